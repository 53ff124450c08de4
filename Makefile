# The two entry points of the README's quickstart. Both set up .venv first (idempotent).
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/snakemake --cores 2 --profile profiles/default

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
