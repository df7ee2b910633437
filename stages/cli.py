"""The ``pixrec`` command: one subcommand per DVC stage, imported only when it runs (fast --help)."""

from __future__ import annotations

import importlib

import typer

STAGES: dict[str, str] = {
    "download": "stages.download",
    "split": "stages.split",
    "embed-images": "stages.embed_images",
    "embed-text": "stages.embed_text",
    "negative-sample": "stages.negative_sample",
    "train": "stages.train",  # DVC's train-fusion / train-two-tower: pixrec train --model <name>
    "tune": "stages.tune",
    "evaluate": "stages.evaluate",
    "recommend": "stages.recommend",
    "headline": "stages.headline",
    "two-stage": "stages.two_stage",
    "ablate": "stages.ablate",
    "ablate-encoders": "stages.ablate_encoders",
    "ablate-summary": "stages.ablate_summary",
    "report": "stages.report",
    "bench": "stages.bench",  # not a DVC stage: measures the pipeline (design notes §7)
}

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


def _passthrough(module: str):
    def run(ctx: typer.Context) -> None:
        stage = importlib.import_module(module)
        stage.app(args=ctx.args, prog_name=f"pixrec {ctx.info_name}")

    return run


for _name, _module in STAGES.items():
    app.command(
        _name,
        help=f"Run the {_name} stage (see `pixrec {_name} --help`).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(_passthrough(_module))


if __name__ == "__main__":
    app()
