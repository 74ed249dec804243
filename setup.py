"""catgen: few-shot semantic image synthesis by class affinity transfer."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name):
    lines = Path(__file__).parent.joinpath('requirements', name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


setup(
    name='catgen',
    version='0.1.0',
    description='Few-shot semantic image synthesis: class affinity transfer and baselines on OpenMMLab',
    long_description=Path(__file__).parent.joinpath('README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['catgen', 'catgen.*']),
    # the model zoo ships inside the package (docs/model_zoo.md)
    package_data={'catgen.model_zoo': ['zoo.json', 'weights/*.pth']},
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'optional': read_requirements('optional.txt'),
        'tests': read_requirements('tests.txt'),
    },
    license='Apache-2.0',
)
