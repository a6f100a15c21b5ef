"""The ten systems. Each is a sub-package with its own `cli.py` (a Typer sub-app named `app`) and
`experiment.py` (its small-scale reproduction, registering a quick demo). Systems never import each other."""
