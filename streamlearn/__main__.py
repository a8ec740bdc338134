"""``python -m streamlearn`` runs the command line."""

from streamlearn.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
