"""``--cfg-options KEY=VALUE ...`` as MMEngine parses it, without its two silent failures.

MMEngine's :class:`~mmengine.config.DictAction` deletes every space of a value
(``work_dir="my runs"`` becomes ``myruns``, ``[a b]`` becomes ``['ab']``), and an unquoted value
with a space arrives as two words, the second without ``=``, which crashes with
"not enough values to unpack". :class:`CfgOptionsAction` parses the same syntax (numbers, booleans,
``None``, lists ``[a,b]`` and tuples ``(a,b)``), but

- keeps the spaces of a plain value (``work_dir="my runs"`` stays ``'my runs'``);
- refuses a space inside one element of a list or tuple (``[my runs,b]``), which MMEngine's
  syntax cannot express;
- refuses a word without ``=`` and says how to quote.

Refusals go through ``parser.error``: the usage line, the message, exit status 2.
"""
import copy
import re

from mmengine.config import DictAction

__all__ = ['CfgOptionsAction', 'parse_option_value']

# a space between two characters of the same list element (not next to , [ ] ( ))
_SPACE_IN_ELEMENT = re.compile(r'[^\s,\[\]()]\s+[^\s,\[\]()]')


def parse_option_value(key, value):
    """The Python value of ``KEY=VALUE`` (``value`` is the text after the first ``=``).

    Raises:
        ValueError: a space inside one element of a list or tuple (names the option).
    """
    text = value.strip()
    if not re.search(r'\s', text):
        return DictAction._parse_iterable(text)
    unquoted = text.strip('\'"')
    is_sequence = unquoted[:1] in '[(' and unquoted[-1:] in '])' or ',' in unquoted
    if not is_sequence:
        return unquoted  # a plain value with spaces: a string, kept verbatim
    if _SPACE_IN_ELEMENT.search(unquoted):
        raise ValueError(
            f'--cfg-options {key}={value!r}: a space inside one element of a list or tuple cannot '
            f'be written in --cfg-options (MMEngine would delete it and join the words). Write '
            f'the value in a config file that inherits this one (_base_ = [...]) instead.')
    return DictAction._parse_iterable(unquoted)


class CfgOptionsAction(DictAction):
    """argparse action for ``--cfg-options``: a dict of dotted keys to parsed values."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = copy.copy(getattr(namespace, self.dest, None) or {})
        for item in values or []:
            if '=' not in item:
                parser.error(
                    f'{option_string or "--cfg-options"}: {item!r} is not KEY=VALUE. A value '
                    f'with spaces must reach catgen as one word: quote the whole option, e.g. '
                    f'--cfg-options "work_dir=my runs/cat". Nothing was run.')
            key, value = item.split('=', 1)
            try:
                options[key] = parse_option_value(key, value)
            except ValueError as err:
                parser.error(str(err))
        setattr(namespace, self.dest, options)
