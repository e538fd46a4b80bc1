"""The web page: static files in static/, served by pgface.api at /."""
