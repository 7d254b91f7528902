"""Request and response bodies of the public API (pydantic), kept apart from the routes that use them."""
