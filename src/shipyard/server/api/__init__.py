"""The API's routers, one module per resource; ``server/app.py`` includes them."""
