"""The core package every room imports: errors today; session, lake, registry and CLI as they move here."""
