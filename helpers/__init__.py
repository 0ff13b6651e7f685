"""The fine-tuning workbook's package: every line of training, evaluation, data and retrieval code.

Import submodules explicitly (``from helpers import runtime``); importing this
package has no side effects.
"""

__version__ = "0.1.0"
