"""Middleware signals sent only to the middleware that handle them."""
from __future__ import annotations

from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.middleware import MiddlewareError


class LeanSignals(Broker):
    """A broker that calls, for each signal, only the middleware methods that do something."""

    #: Signal name -> the middleware methods that handle it (see ``emit_before``).
    _hooks: dict[str, list[Any]]

    def add_middleware(self, middleware: Middleware, **where: Any) -> None:
        super().add_middleware(middleware, **where)
        self._hooks.clear()

    def _handlers(self, name: str) -> list[Any]:
        """The bound ``name`` methods of the middleware that define their own, in order.

        Dramatiq calls every middleware for every signal, and most inherit a
        method that does nothing; four signals a message times three
        middleware made twelve calls, where this makes three.
        """
        handlers = self._hooks.get(name)
        if handlers is None:
            default = getattr(Middleware, name, None)
            handlers = []
            for middleware in self.middleware:
                method = getattr(middleware, name, None)
                if method is None:
                    continue  # no such hook
                if default is not None and getattr(method, "__func__", None) is default:
                    continue  # Middleware's own no-op
                handlers.append(method)
            self._hooks[name] = handlers
        return handlers

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for handler in self._handlers("before_" + signal):
            try:
                handler(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in before_%s of %r.", signal,
                                     handler.__self__, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        for handler in reversed(self._handlers("after_" + signal)):
            try:
                handler(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in after_%s of %r.", signal,
                                     handler.__self__, exc_info=True)
