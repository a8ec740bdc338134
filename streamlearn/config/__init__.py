"""Settings: one validated, frozen object built from env, a TOML file and defaults."""

from streamlearn.config.settings import (
    CONFIG_ENV,
    ENV_PREFIX,
    Settings,
    default_cache_dir,
    default_data_dir,
    load_settings,
)

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "Settings",
    "default_cache_dir",
    "default_data_dir",
    "load_settings",
]
