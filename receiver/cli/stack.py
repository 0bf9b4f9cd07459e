"""`blast-radius stack`: the live pipeline on this machine, with a control to fail and
heal a tenant; Ctrl-C (or `quit`) stops everything it started."""

from __future__ import annotations

from pathlib import Path

import click

from receiver.cli.client import tokens
from receiver.stack import Stack

HELP = "commands: fail <tenant> [ratio] | heal <tenant> | quit"


@click.command()
@click.option(
    "--files",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="folder with prometheus-rules.yml and alertmanager.yml",
)
@click.option(
    "--tenants",
    default="t1:platinum:10,t2:gold:10,t3:silver:10,t4:bronze:10,t5:bronze:10",
    show_default=True,
    help="simulated tenants, id:tier:qps",
)
def stack(files: Path, tenants: str) -> None:
    """Run Redis, the receiver, the worker, Alertmanager, Prometheus and a simulated
    platform on loopback; fail and heal tenants from the prompt."""
    env = tokens()
    running = Stack(files.resolve(), env, tenants)
    try:
        click.echo("starting (Prometheus takes a few seconds)...")
        running.start()
        for name, url in running.urls.items():
            if name != "redis":
                click.echo(f"  {name:<13} {url}")
        click.echo(f"watch: blast-radius tenants --url {running.urls['receiver']}")
        click.echo(HELP)
        while True:
            words = click.prompt("stack", default="", show_default=False).split()
            if not words:
                continue
            if words[0] in ("quit", "exit"):
                break
            if words[0] in ("fail", "heal") and len(words) >= 2:
                ratio = float(words[2]) if words[0] == "fail" and len(words) > 2 else 0.95
                running.control(words[1], ratio if words[0] == "fail" else 0.0)
                click.echo(
                    f"{words[1]} now fails {ratio if words[0] == 'fail' else 0:.0%} of its queries"
                )
            else:
                click.echo(HELP)
    except (KeyboardInterrupt, click.Abort, EOFError):
        pass
    finally:
        click.echo("stopping everything...")
        running.stop()
