"""catgen/transfer knows networks only through the model protocol: no layer names, no regular
expressions over module names, no signature probing of a particular architecture."""
import ast
from pathlib import Path

TRANSFER = Path(__file__).resolve().parents[2] / 'catgen' / 'transfer'

#: names of OASIS / SPADE / PatchGAN layers and attributes that a strategy must not use
LAYER_NAMES = ('fc', 'mlp_shared', 'mlp_gamma', 'mlp_beta', 'param_free_norm', 'layer_up_last',
               'body_down', 'body_up', 'body', 'conv_img', 'model0', 'head_0', 'G_middle',
               'up_0', 'discriminator_0', 'norm_0', 'conv_s', 'encoder_block_names',
               'train_body')


def code_strings_and_names(tree):
    """String constants (docstrings excluded), attribute names and imported modules."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body and \
                isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            docstrings.add(id(node.body[0].value))
    strings, attrs, imports = [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings:
            strings.append(node.value)
        elif isinstance(node, ast.Attribute):
            attrs.append(node.attr)
        elif isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append(node.module or '')
    return strings, attrs, imports


def test_transfer_package_has_no_layer_names_regexes_or_signature_probing():
    files = sorted(TRANSFER.glob('*.py'))
    assert len(files) >= 10
    problems = []
    for path in files:
        strings, attrs, imports = code_strings_and_names(ast.parse(path.read_text()))
        for module in imports:
            if module in ('re', 'inspect'):
                problems.append(f'{path.name}: imports {module}')
        for s in strings:
            parts = set(s.replace('.', ' ').split())
            hit = parts & set(LAYER_NAMES)
            if hit:
                problems.append(f'{path.name}: string {s!r} names layer(s) {sorted(hit)}')
        for attr in attrs:
            if attr in LAYER_NAMES:
                problems.append(f'{path.name}: attribute .{attr}')
    assert not problems, '\n'.join(problems)
