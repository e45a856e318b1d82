"""A run's settings without TensorFlow: `RunConfig` and its flagfile round trip (`run_config`), and the table of
which options belong to which choice (`options`). Tools that only read runs (results, report) import these alone."""

from tfregimes.config.options import OPTIONS, Option, applies, builder_arguments, flag_rules
from tfregimes.config.run_config import (
                                         PRESENTATION_FIELDS,
                                         RunConfig,
                                         field_names,
                                         format_flag_value,
                                         parse_flagfile_values,
                                         to_flagfile,
)

__all__ = ["OPTIONS", "PRESENTATION_FIELDS", "Option", "RunConfig", "applies", "builder_arguments", "field_names",
           "flag_rules", "format_flag_value", "parse_flagfile_values", "to_flagfile"]
