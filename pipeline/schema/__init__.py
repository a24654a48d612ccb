"""The user's schema: loading and checking it (JSON Schema or a pydantic model), and the grammar it becomes."""
