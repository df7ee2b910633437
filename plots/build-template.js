// Writes plots/offline.html: DVC's plot page template with Vega, Vega-Lite and Vega-Embed inlined from
// node_modules, so `dvc plots show` renders without a network (.dvc/config: plots.html_template).
// Runs after `npm ci --prefix plots` (postinstall). DVC fills {plot_divs} and {refresh_tag}; the
// template has no {scripts}, where DVC would put its CDN <script> tags.
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
