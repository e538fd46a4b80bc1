"""The HTTP API and web page: `create_app(settings)`, served by `pgface serve`."""

from pgface.api.app import create_app

__all__ = ["create_app"]
