// Writes plots/offline.html: DVC's plot page template with Vega, Vega-Lite and Vega-Embed inlined from
// node_modules, so `dvc plots show` renders without a network (.dvc/config: plots.html_template).
// Runs after `npm ci --prefix plots` (postinstall). DVC fills {plot_divs} and {refresh_tag}; the
// template has no {scripts}, where DVC would put its CDN <script> tags.
// The committed .dvc/config names plots/fallback.html (CDN scripts and a note), so that `dvc plots show`
// works before npm has run; this script then sets plots.html_template in .dvc/config.local (git-ignored,
// read after .dvc/config) to the page it built. A plots.html_template already set there is kept.
"use strict";
const fs = require("fs");
const path = require("path");

const LIBS = ["vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js"];
const PLACEHOLDERS = ["{plot_divs}", "{scripts}", "{refresh_tag}"];

const scripts = LIBS.map((lib) => {
  const code = fs.readFileSync(path.join(__dirname, "node_modules", lib), "utf8");
  const clash = PLACEHOLDERS.find((p) => code.includes(p));
  if (clash) throw new Error(`${lib} contains ${clash}, which DVC would replace`);
  const version = require(path.join(__dirname, "node_modules", lib.split("/")[0], "package.json")).version;
  return `<!-- ${lib} ${version} -->\n<script>${code.replace(/<\/script/gi, "<\\/script")}</script>`;
});

const page = `<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
${scripts.join("\n")}
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
`;
const out = path.join(__dirname, "offline.html");
fs.writeFileSync(out + ".tmp", page);
fs.renameSync(out + ".tmp", out);
console.log(`wrote ${out} (${Math.round(page.length / 1024)} KiB: ${LIBS.length} libraries inlined)`);

// .dvc/config.local: `[plots] html_template = ../plots/offline.html` (paths there are relative to .dvc/),
// added to the file's [plots] section or as a new one; nothing else in the file changes.
const dvcDir = path.join(__dirname, "..", ".dvc");
const TEMPLATE_LINE = "    html_template = ../plots/offline.html";
function withTemplate(text) {
  const lines = text.split("\n");
  const header = lines.findIndex((l) => /^\s*\[\s*plots\s*\]\s*$/.test(l));
  if (header < 0) return `${text}${text && !text.endsWith("\n") ? "\n" : ""}[plots]\n${TEMPLATE_LINE}\n`;
  const end = lines.findIndex((l, i) => i > header && /^\s*\[/.test(l));
  const section = lines.slice(header + 1, end < 0 ? lines.length : end);
  if (section.some((l) => /^\s*html_template\s*=/.test(l))) return null; // the user's choice stands
  lines.splice(header + 1, 0, TEMPLATE_LINE);
  return lines.join("\n");
}
if (fs.existsSync(dvcDir) && fs.statSync(dvcDir).isDirectory()) {
  const local = path.join(dvcDir, "config.local");
  const text = fs.existsSync(local) ? fs.readFileSync(local, "utf8") : "";
  const updated = withTemplate(text);
  if (updated === null) {
    console.log(`kept plots.html_template in ${local}`);
  } else {
    fs.writeFileSync(local + ".tmp", updated);
    fs.renameSync(local + ".tmp", local);
    console.log(`${local}: plots.html_template = ../plots/offline.html`);
  }
}
