"""Kedro hooks: validate every parameter section before any node runs."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from phot7dt.params import validate_parameters

logger = logging.getLogger(__name__)


class ParameterValidationHooks:
    """Fail a run early, naming the dotted key path, when a parameter is wrong."""

    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)
