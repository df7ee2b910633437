"""The ``pixrec`` command: one subcommand per DVC stage, the commands over a workspace's trained
artefacts (recommend --user, similar, score-new) and ``status``; each imported only when it runs (fast
--help)."""

from __future__ import annotations

import importlib

import typer

STAGES: dict[str, str] = {
    "download": "stages.download",
    "split": "stages.split",
    "embed-images": "stages.embed_images",
    "embed-text": "stages.embed_text",
    "negative-sample": "stages.negative_sample",
    "train": "stages.train",  # DVC's train@<model>: pixrec train --model <name>
    "tune": "stages.tune",
    "evaluate": "stages.evaluate",
    "recommend": "stages.recommend",
    "headline": "stages.headline",
    "two-stage": "stages.two_stage",
    "ablate": "stages.ablate",
    "ablate-encoders": "stages.ablate_encoders",
    "ablate-summary": "stages.ablate_summary",
    "report": "stages.report",
    "bench": "stages.bench",  # not a DVC stage: measures the pipeline (docs/scale.md)
}
# commands over a workspace (its trained artefacts through pixrec.serve, or its DVC status), not DVC
# stages; `pixrec recommend --user` is the recommend stage's own command
TOOLS: dict[str, tuple[str, str]] = {
    "similar": ("stages.similar", "Nearest items by the headline model's item vectors"),
    "score-new": ("stages.score_new", "Place new items by content: who they would be recommended to"),
    "status": ("stages.status", "What is not up to date (never run, changed, no outputs) and what to run"),
}

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


def _passthrough(module: str):
    def run(ctx: typer.Context) -> None:
        stage = importlib.import_module(module)
        stage.app(args=ctx.args, prog_name=f"pixrec {ctx.info_name}")

    return run


_HELP = {name: f"Run the {name} stage" for name in STAGES} | {name: h for name, (_, h) in TOOLS.items()}
_HELP["recommend"] += ", or show a user's top-k (--user)"
for _name, _module in {**STAGES, **{n: m for n, (m, _) in TOOLS.items()}}.items():
    app.command(
        _name,
        help=f"{_HELP[_name]} (see `pixrec {_name} --help`).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(_passthrough(_module))


if __name__ == "__main__":
    app()
