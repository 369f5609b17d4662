"""One router per resource, laid out like the FastAPI full-stack template."""
