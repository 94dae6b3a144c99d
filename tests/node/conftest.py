from tests.client_package.live_server import live_server

__all__ = ["live_server"]
