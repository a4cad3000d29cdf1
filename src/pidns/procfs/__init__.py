"""The /proc model (frozen dataclasses), pure parsers, and a reader over a /proc root."""
