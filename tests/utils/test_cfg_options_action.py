import argparse

import pytest

from catgen.utils.cfg_options_action import CfgOptionsAction, parse_option_value


def parse(*items):
    p = argparse.ArgumentParser(prog='train.py')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    return p.parse_args(['--cfg-options', *items]).cfg_options


def test_values_parse_as_mmengine_does_and_keep_their_spaces():
    opts = parse('work_dir=my runs/cat', 'a=[1, 2]', 'b=(x,y)', 'c=None', 'd=3.5', 'e=True',
                 'f=abc', 'g="quoted text"')
    assert opts == {'work_dir': 'my runs/cat', 'a': [1, 2], 'b': ('x', 'y'), 'c': None,
                    'd': 3.5, 'e': True, 'f': 'abc', 'g': 'quoted text'}


def test_an_unquoted_value_with_a_space_is_refused(capsys):
    with pytest.raises(SystemExit) as err:
        parse('work_dir=my', 'runs')
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "'runs' is not KEY=VALUE" in message and '"work_dir=my runs/cat"' in message


def test_a_space_inside_a_list_element_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse('a=[my runs,b]')
    assert 'a space inside one element' in capsys.readouterr().err
    with pytest.raises(ValueError, match='--cfg-options a='):
        parse_option_value('a', 'x y,z')
