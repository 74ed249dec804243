"""plot_affinity_heatmap: a PNG of the matrix, written atomically."""
import numpy as np
from PIL import Image

from catgen.affinity import AffinityMatrix
from catgen.visualization import plot_affinity_heatmap


def test_heatmap_writes_a_png_sized_by_the_classes(tmp_path):
    small = AffinityMatrix(np.eye(3), ['a', 'b', 'c'], ['x', 'y', 'z'], {'estimator': 'E'})
    p = plot_affinity_heatmap(small, tmp_path / 'sub' / 'h.png', top_k_annotate=2)
    data = p.read_bytes()
    assert p == tmp_path / 'sub' / 'h.png' and data[:8] == b'\x89PNG\r\n\x1a\n'
    assert [q.name for q in p.parent.iterdir()] == ['h.png']  # no temporary left behind
    rng = np.random.default_rng(0)
    big = AffinityMatrix(rng.dirichlet(np.ones(20), size=12), [f't{i}' for i in range(12)],
                         [f's{i}' for i in range(20)])
    q = plot_affinity_heatmap(big, tmp_path / 'big.png', top_k_annotate=0, dpi=50)
    with Image.open(p) as a, Image.open(q) as b:
        assert b.size[0] > a.size[0] * 50 / 100   # wider figure for more source classes
        assert a.mode in ('RGBA', 'RGB')
