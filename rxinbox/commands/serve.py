"""`rxinbox serve`: the Prefect UI with every deployment, and a worker that runs them."""

import typer

from policy_rules.yaml_errors import RuleFileError
from rxinbox.serve import ServeError, serve
from rxinbox.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        port: int = typer.Option(4200, "--port", min=1, max=65535, help="Port of the Prefect server and UI."),
        no_worker: bool = typer.Option(False, "--no-worker", help="Do not start a worker (workers run elsewhere)."),
    ) -> None:
        """Start Prefect, deploy every flow and mailbox, run a worker; Ctrl-C stops it all. Example: rxinbox serve --port 4200"""

        def ready(url: str, deployments: list[str]) -> None:
            typer.echo(f"Deployments ({len(deployments)}): {', '.join(deployments)}")
            typer.echo("Worker: " + ("not started (--no-worker)" if no_worker else "process worker running"))
            typer.echo(f"Prefect UI: {url}", color=False)

        try:
            serve(get_settings(), port=port, worker=not no_worker, ready=ready)
        except (ServeError, RuleFileError) as exc:
            typer.echo(f"rxinbox serve: {exc}", err=True)
            raise typer.Exit(1) from None
