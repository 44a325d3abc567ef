"""tinyapi: the Go tinyapi of "Building Tiny Secure Docker Containers", ported to Python."""

# The original calls itself v0.1; this port starts its own lineage at 0.1.0.
__version__ = "0.1.0"
