"""The typed configuration of a run: every setting declared once (settings), automatic values
filled in one step (resolve)."""
