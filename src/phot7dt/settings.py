"""Kedro project settings for phot7dt."""

from kedro.config import OmegaConfigLoader

from phot7dt.hooks import ParameterValidationHooks, RunHooks

HOOKS = (ParameterValidationHooks(), RunHooks())
# kedro-viz records run events on every sequential run; the pipelines here do not need it.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/local, conf/sample) overrides single keys of a section,
    # not whole sections.
    "merge_strategy": {"parameters": "soft"},
}
