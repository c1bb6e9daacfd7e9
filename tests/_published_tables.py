"""Published PID values for named example distributions (data only; see test_published_tables.py).

Every entry names its source, defines the distribution exactly as the source does, and gives the
values as printed there. Units are bits throughout. Where the source prints a rounded value the
tests compare within that rounding (half a unit in the last printed place, plus 1e-9 of float
slack); full-precision and exact values are compared to 1e-12 bits, and the analytic values of
``MAXENT3D_COPY`` to 1e-8 bits (pidkit's solver tolerance; see ``ROUNDING``).

Where the papers' own tables come from
--------------------------------------
The measure papers' tables themselves (Ince 2017, Finn & Lizier 2018, James et al. 2019, Makkeh
et al. 2021, Griffith & Ho 2015, Niu & Quinn 2019, ...) could not be transcribed here: the stored
web pages of those papers (ar5iv, MDPI, PMC) came back only as their openings (title, abstract,
introduction), never the table pages, so no number below is copied from a paper's table. Instead
the values come from the authors' own published outputs and tests, which the task allows when
cited precisely (``KOLCHINSKY``'s are the saved outputs of the notebook that generates two tables
of a later paper, mostly computed with dit). No published value of I_IG (Niu & Quinn 2019) was
reachable; MMI, I_wedge and I_proj have only ``KOLCHINSKY``'s dit-computed values:

``INCE``
    R. A. A. Ince's repository for "Measuring multivariate redundant information with pointwise
    common change in surprisal" (Entropy 19(7), 318, 2017; arXiv:1602.05063), the code the paper
    provides: https://github.com/robince/partial-info-decomp at commit
    ff12d4e9514a343a1675998dda5b5eb6c44fbce9 (2017-05-02, "update examples output for Iccs v2";
    the examples were set up for the Entropy version in f9e8ab0, "examples for arxiv v2
    (entropy) draft"). Values: files ``examples2d_output.txt`` and ``examples3d_output.txt``
    (unchanged since, up to the newest stored commit 3220716); distributions: ``examples_2d.m``
    and ``examples_3d.m`` at that commit. Printed ``%6.4f``: 4 decimals, bits. Columns: ``Imin``
    (Williams & Beer 2010, Moebius inversion by ``calc_pi.m`` with its defaults: no clipping, no
    level normalisation), ``Iccs`` (Ince 2017, the v2 definition with the maximum-entropy
    distribution, ``Iccs.m``) and, for two sources, ``Ibroja`` (Bertschinger et al. 2014 as
    computed by dit's ``pid_broja`` in 2017, called through ``pid_broja.m`` / ``pidbroja.py``).
    Matlab arrays ``Pxxy(x1, x2, y)`` / ``Pxxxy(x1, x2, x3, y)`` are 1-based with the target on
    the last axis; ``cells`` below copies their assignments verbatim (index tuple: probability;
    every other cell is 0). The atoms are printed in the order of ``lattice2d.m`` /
    ``lattice3d.m``, given in ``INCE_NODES_2`` and ``INCE_NODES_3`` (source indices 1-based,
    ``{12}`` = sources 1 and 2 taken jointly).

``IDTXL_SX``
    IDTxl's unit tests of its I_sx estimator (``SxPID``, written with A. Makkeh, first author of
    Makkeh, Gutknecht & Wibral, Phys. Rev. E 103, 032149, 2021):
    https://github.com/pwollstadt/IDTxl, file ``test/test_estimators_multivariate_pid.py`` at
    commit 0828581e9a9d0ba2f6c302eca0df0fedc7816fa6. Averaged atoms (``est['avg'][node][2]``, the
    informative minus the misinformative part), bits, printed to 16-17 significant digits and
    asserted there with ``np.isclose`` (``atol`` 1e-8, or 1e-7 for the copy gate). Sources are
    the sample arrays of that file, each outcome equally likely; nodes are IDTxl's 1-based
    tuples, ``((1,), (2,))`` the redundancy.

``DIT_DEP``
    dit's unit test of I_dep (dit is maintained by R. G. James, first author of James,
    Emenheiser & Crutchfield, J. Phys. A 52, 014002, 2019): https://github.com/dit/dit, file
    ``dit/pid/tests/test_idep.py`` at commit 239ae32e52850d4aa8a9fbfb2240185d786dfc6b,
    ``test_pid_dep1`` on ``bivariates['reduced or']`` (outcomes x0 x1 y: 000 with 1/2, 011 and
    101 with 1/4, as printed in dit's ``docs/measures/pid.rst``). Atoms in bits, printed to 17
    digits but asserted there only to ``abs=1e-4`` (dit fits the maximum-entropy pmf
    numerically), so that is the tolerance here.

``FINN_PM``
    C. Finn's repository for Finn & Lizier, "Pointwise partial information decomposition using the
    specificity and ambiguity lattices" (Entropy 20(4), 297, 2018), the Matlab code of its
    two-source I_pm: https://github.com/finnconor/info_decomp_functions, file ``README.md`` at
    commit eb4c2154e8e5274e2b5c78478bfcc2f42860d296 (2021-09-07; the README is unchanged since
    0cdf823). Its worked example is the two-bit copy t = (s1, s2), coded t = 2 s1 + s2 (the
    paper's example Tbc), each (s1, s2) with probability 1/4. ``redAsMinIComponent.m`` prints, in
    every row, r+ = 1, u+(s1) = u+(s2) = 0, c+ = 1 (specificity lattice) and r- = u-(s1) =
    u-(s2) = c- = 0 (ambiguity lattice), so their p-weighted averages (pidkit's informative and
    misinformative parts) are the same; ``redAsMinIComponentTotal.m`` prints the averaged
    recombined atoms U1 = 0, U2 = 0, R = 1, C = 1. Logarithms base 2 (``log2`` in the .m files);
    the printed integers are exact, so they are compared to 1e-12.

``KOLCHINSKY``
    A. Kolchinsky's repository for "A novel approach to the partial information decomposition"
    (Entropy 24(3), 403, 2022): https://github.com/artemyk/redundancy, notebook
    ``ComparisonTable.ipynb`` at commit 0b0650253d1acb482c982083efdf0bf5db365f87 (2022-01-05; the
    paper was submitted on 2022-01-04), the last version whose saved outputs hold the tables; the
    notebook "recreates comparison tables (Table 2 and Table 3)" of the paper (later versions
    reorder the columns and were committed without outputs). The redundancy (the bottom atom,
    ``{1}{2}`` or ``{1}{2}{3}``) of each measure, printed ``% .3f`` (3 decimals, bits).
    Provenance of the columns: ``GH`` (Griffith & Ho 2015) is Kolchinsky's own solver
    (``i_GH.get_I_GH(pjoint, n_q=4)``: a vertex enumeration with the auxiliary variable limited
    to 4 states, so a lower bound on I_GH; pidkit's exact value agrees to the printed 3 decimals);
    every other column (``WB``, ``MMI``, ``BROJA``, ``Proj``, ``Iwedge``, ``CCS``, ``Ipm``,
    ``Idep``) was computed by dit's ``PID_*`` classes of the time, so those values are published
    in a paper but are not independent of dit. Not transcribed: the ``Istar`` column (the paper's
    own I_cap^prec, which pidkit does not implement) and the cells printed ``-----`` (Idep and GH
    on COPY and COPYalpha, skipped there as too slow). Distributions as the notebook builds them,
    in dit's outcome strings ``x1 x2 y`` (``x1 x2 x3 y`` for three sources), one character per
    variable: dit's ``bivariates['and']``, ``['unique 1']``, ``['cat']`` and
    ``trivariates['sum']`` (definitions checked in dit at 2853cb1, 2021-05-06), the notebook's own
    ``sum``, ``Unq1alpha`` and ``COPYalpha`` (pmf proportional to 0.7, 0.3, 0.3, 0.7), the 3-way AND
    and the "Overlap" gate X1 = (A, B), X2 = (A, C), X3 = (A, D), Y = (X1, X2, X3), its outcomes
    generated by the notebook's loop (16 equally likely outcomes; Y coded by the notebook's
    characters ``0``-``9``, ``A``-``F``).

``MAXENT3D_COPY``
    The testing script of MAXENT3D_PID, the estimator of Makkeh, Chicharro, Theis & Vicente
    (Entropy 21(9), 862, 2019; arXiv:1901.03352) for the maximum-entropy three-source PID:
    https://github.com/Abzinger/MAXENT3D_PID, file ``testing/test_copy_gate.py`` at commit
    8cc69a96311e00027caa6d3085615ac5a4ee6203 (2019-12-05; the file is unchanged since c4e509e).
    For the copy gate T = (X, Y, Z), X, Y, Z independent and uniform on |X|, |Y|, |Z| values
    (``pdf[(s, x, y, z)] = 1/(n_X n_Y n_Z)``, s = (x, y, z)), the script computes the deviation
    of the estimator from "the analytical results": CI = SI = UIXY = UIXZ = UIYZ = 0,
    UIX = log2 n_X, UIY = log2 n_Y, UIZ = log2 n_Z. These are exact values; the sizes below are
    chosen here (the script takes ranges of sizes on its command line). MAXENT3D_PID returns
    sums of Williams-Beer atoms; ``MAXENT3D_QUANTITIES`` maps each to its atoms as the
    maximum-entropy definition gives them (``pidkit/discrete/broja/_three.py`` derives the same
    map): CI the eight atoms not below any single source, UIX = ``{1}`` + ``{1}{23}``,
    UIXY = ``{1}{2}``, SI = ``{1}{2}{3}``.

Notes on the examples
---------------------
- ``IMPERFECTRDN Griffith (2014) Fig 3``: Ince's script uses p(x1, x2, y) = 0.4 (1,1,1),
  0.1 (1,2,1), 0.5 (2,2,2); the values of Griffith et al. (0.499, 0.001, 0.5) are commented out
  there, so the printed values belong to the 0.4 / 0.1 variant, which is what ``cells`` holds.
- ``Reduced OR (Lizier)``: in the script at that commit the last assignment and the label share
  one line (``Pxxy(2,1,2) = 0.25;fprintf(...)``); the distribution is the same as dit's
  ``reduced or`` below.
- The first and the ``Griffith & Koch (2014) Fig. 6.3`` RDN blocks are the same distribution,
  kept as printed.

No disagreement: pidkit reproduces every value below within the printed rounding (checked
2026-12-05 when this file was written: the largest difference from one of Ince's 4-decimal
values is 4.9e-5 bits, I_min on "Williams and Beer Fig 4 Modified 2"; from IDTxl's values
6e-16 bits; from dit's I_dep values 7e-9 bits; FINN_PM exactly; the MAXENT3D_COPY analytic
values to 3e-15 bits; KOLCHINSKY's 3-decimal values within their rounding, the largest
difference 4.4e-4 bits: GH on AND, 0.12256 printed 0.123).

Counts: 21 two-source examples x 3 measures x 4 atoms (252 values) and 10 three-source
examples x 2 measures x 18 atoms (360 values) from INCE; 9 values from IDTXL_SX; 4 from
DIT_DEP; 12 from FINN_PM (I_pm: 4 atoms, 4 informative and 4 misinformative atoms); 65 from
KOLCHINSKY (6 two-source distributions: 9 measures on 4 of them, 7 on COPY and COPYalpha;
3 three-source distributions x 5 measures); 32 from MAXENT3D_COPY (4 copy gates x 8
quantities of the three-source BROJA).
"""

import math

INCE = "robince/partial-info-decomp@ff12d4e9514a343a1675998dda5b5eb6c44fbce9"
IDTXL_SX = ("pwollstadt/IDTxl@0828581e9a9d0ba2f6c302eca0df0fedc7816fa6:"
            "test/test_estimators_multivariate_pid.py")
DIT_DEP = "dit/dit@239ae32e52850d4aa8a9fbfb2240185d786dfc6b:dit/pid/tests/test_idep.py"
FINN_PM = "finnconor/info_decomp_functions@eb4c2154e8e5274e2b5c78478bfcc2f42860d296:README.md"
KOLCHINSKY = "artemyk/redundancy@0b0650253d1acb482c982083efdf0bf5db365f87:ComparisonTable.ipynb"
MAXENT3D_COPY = ("Abzinger/MAXENT3D_PID@8cc69a96311e00027caa6d3085615ac5a4ee6203:"
                 "testing/test_copy_gate.py")

# Tolerance of each source, in bits: half a unit in the last printed place (INCE, KOLCHINSKY);
# 0 for full-precision and exact values (IDTxl, FINN_PM: the tests use 1e-12); dit's own
# assertion tolerance for DIT_DEP; for the exact analytic MAXENT3D_COPY values, 1e-8, the
# accuracy asked of pidkit's three-source BROJA solver (1e-9 bits per program, an atom involving
# at most eight programs).
ROUNDING = {INCE: 5e-5, IDTXL_SX: 0.0, DIT_DEP: 1e-4, FINN_PM: 0.0, KOLCHINSKY: 5e-4,
            MAXENT3D_COPY: 1e-8}

# lattice2d.m: lat.A = { {1 2}, {1}, {2}, {[1 2]} }
INCE_NODES_2 = ("{1}{2}", "{1}", "{2}", "{12}")
# lattice3d.m: lat.A, in its order
INCE_NODES_3 = (
    "{1}{2}{3}",
    "{1}{2}", "{1}{3}", "{2}{3}",
    "{1}{23}", "{2}{13}", "{3}{12}",
    "{1}", "{2}", "{3}", "{12}{13}{23}",
    "{12}{13}", "{12}{23}", "{13}{23}",
    "{12}", "{13}", "{23}",
    "{123}",
)


def _ince2(**entry):
    return {"source": INCE, "file": "examples2d_output.txt / examples_2d.m",
            "nodes": INCE_NODES_2, **entry}


def _ince3(**entry):
    return {"source": INCE, "file": "examples3d_output.txt / examples_3d.m",
            "nodes": INCE_NODES_3, **entry}


# Two sources; label as printed; measure -> atoms in INCE_NODES_2 order.
INCE_TWO_SOURCE = [
    _ince2(
        label="RDN",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.5, (2, 2, 2): 0.5},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (1.0000, 0.0000, 0.0000, 0.0000),
            "broja": (1.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince2(
        label="Williams and Beer Fig 4A",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 1 / 3, (1, 2, 2): 1 / 3, (2, 1, 3): 1 / 3},
        values={
            "imin": (0.5850, 0.3333, 0.3333, 0.3333),
            "ccs": (0.3900, 0.5283, 0.5283, 0.1383),
            "broja": (0.2516, 0.6667, 0.6667, 0.0000),
        },
    ),
    _ince2(
        label="Williams and Beer Fig 4B",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 0.25, (1, 2, 2): 0.25, (2, 2, 2): 0.25, (2, 1, 3): 0.25},
        values={
            "imin": (0.5000, 0.0000, 0.5000, 0.5000),
            "ccs": (0.0000, 0.5000, 1.0000, 0.0000),
            "broja": (0.0000, 0.5000, 1.0000, 0.0000),
        },
    ),
    _ince2(
        label="Williams and Beer Fig 4 Modified 1",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 1 / 6, (1, 2, 2): 1 / 6, (2, 2, 2): 1 / 6, (2, 1, 3): 1 / 6,
               (2, 2, 1): 1 / 6, (1, 2, 3): 1 / 6},
        values={
            "imin": (0.0000, 0.0000, 0.2516, 0.6667),
            "ccs": (0.0000, 0.0000, 0.2516, 0.6667),
            "broja": (0.0000, 0.0000, 0.2516, 0.6667),
        },
    ),
    _ince2(
        label="Williams and Beer Fig 4 Modified 2",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 1 / 5, (1, 2, 2): 1 / 5, (2, 2, 2): 1 / 5, (2, 1, 3): 1 / 5,
               (2, 2, 1): 1 / 5},
        values={
            "imin": (0.1710, 0.0000, 0.4000, 0.5510),
            "ccs": (0.0000, 0.1710, 0.5710, 0.3800),
            "broja": (0.0903, 0.0806, 0.4806, 0.4704),
        },
    ),
    _ince2(
        label="1 bit copy",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.25, (1, 2, 1): 0.25, (2, 1, 2): 0.25, (2, 2, 2): 0.25},
        values={
            "imin": (0.0000, 1.0000, 0.0000, 0.0000),
            "ccs": (0.0000, 1.0000, 0.0000, 0.0000),
            "broja": (0.0000, 1.0000, 0.0000, 0.0000),
        },
    ),
    _ince2(
        label="2 bit copy (independent)",
        shape=(2, 2, 4),
        cells={(1, 1, 1): 0.25, (1, 2, 2): 0.25, (2, 1, 3): 0.25, (2, 2, 4): 0.25},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 1.0000, 1.0000, 0.0000),
            "broja": (0.0000, 1.0000, 1.0000, 0.0000),
        },
    ),
    _ince2(
        label="2 bit copy (redundant)",
        shape=(2, 2, 4),
        cells={(1, 1, 1): 0.25, (1, 1, 2): 0.25, (2, 2, 3): 0.25, (2, 2, 4): 0.25},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (1.0000, 0.0000, 0.0000, 0.0000),
            "broja": (1.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince2(
        label="Unequal independent copy",
        shape=(4, 2, 8),
        cells={(1, 1, 1): 1 / 8, (2, 1, 2): 1 / 8, (3, 1, 3): 1 / 8, (4, 1, 4): 1 / 8,
               (1, 2, 5): 1 / 8, (2, 2, 6): 1 / 8, (3, 2, 7): 1 / 8, (4, 2, 8): 1 / 8},
        values={
            "imin": (1.0000, 1.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 2.0000, 1.0000, 0.0000),
            "broja": (0.0000, 2.0000, 1.0000, 0.0000),
        },
    ),
    _ince2(
        label="OR",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.25, (1, 2, 2): 0.25, (2, 1, 2): 0.25, (2, 2, 2): 0.25},
        values={
            "imin": (0.3113, 0.0000, 0.0000, 0.5000),
            "ccs": (0.1038, 0.2075, 0.2075, 0.2925),
            "broja": (0.3113, 0.0000, 0.0000, 0.5000),
        },
    ),
    _ince2(
        label="XOR",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.25, (1, 2, 2): 0.25, (2, 1, 2): 0.25, (2, 2, 1): 0.25},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 1.0000),
            "broja": (0.0000, 0.0000, 0.0000, 1.0000),
        },
    ),
    _ince2(
        label="AND",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.25, (1, 2, 1): 0.25, (2, 1, 1): 0.25, (2, 2, 2): 0.25},
        values={
            "imin": (0.3113, 0.0000, 0.0000, 0.5000),
            "ccs": (0.1038, 0.2075, 0.2075, 0.2925),
            "broja": (0.3113, 0.0000, 0.0000, 0.5000),
        },
    ),
    _ince2(
        label="ANDPERM",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.25, (1, 1, 2): 0.25, (2, 1, 1): 0.25, (2, 2, 2): 0.25},
        values={
            "imin": (0.0000, 0.0000, 0.3113, 0.1887),
            "ccs": (0.0000, 0.0000, 0.3113, 0.1887),
            "broja": (0.0000, 0.0000, 0.3113, 0.1887),
        },
    ),
    _ince2(
        label="SUM",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 0.25, (1, 2, 2): 0.25, (2, 1, 2): 0.25, (2, 2, 3): 0.25},
        values={
            "imin": (0.5000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.5000, 0.5000, 0.5000),
            "broja": (0.5000, 0.0000, 0.0000, 1.0000),
        },
    ),
    _ince2(
        label="RNDXOR Griffith (2014) Fig 2",
        shape=(4, 4, 4),
        cells={(1, 1, 1): 1 / 8, (1, 2, 2): 1 / 8, (2, 1, 2): 1 / 8, (2, 2, 1): 1 / 8,
               (3, 3, 3): 1 / 8, (3, 4, 4): 1 / 8, (4, 3, 4): 1 / 8, (4, 4, 3): 1 / 8},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (1.0000, 0.0000, 0.0000, 1.0000),
            "broja": (1.0000, 0.0000, 0.0000, 1.0000),
        },
    ),
    _ince2(
        label="IMPERFECTRDN Griffith (2014) Fig 3",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.4, (1, 2, 1): 0.1, (2, 2, 2): 0.5},
        values={
            "imin": (0.6100, 0.3900, 0.0000, 0.0000),
            "ccs": (0.7685, 0.2315, -0.1585, 0.1585),
            "broja": (0.6100, 0.3900, 0.0000, 0.0000),
        },
    ),
    _ince2(
        label="SUBTLE Griffith (2014) Fig 4",
        shape=(2, 2, 4),
        cells={(1, 1, 1): 1 / 3, (1, 2, 2): 1 / 3, (2, 2, 4): 1 / 3},
        values={
            "imin": (0.5850, 0.3333, 0.3333, 0.3333),
            "ccs": (0.3900, 0.5283, 0.5283, 0.1383),
            "broja": (0.2516, 0.6667, 0.6667, 0.0000),
        },
    ),
    _ince2(
        label="RDN Griffith & Koch (2014) Fig. 6.3",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.5, (2, 2, 2): 0.5},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (1.0000, 0.0000, 0.0000, 0.0000),
            "broja": (1.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince2(
        label="XORAND Bertschinger (2014) Table 1",
        shape=(2, 2, 3),
        cells={(1, 1, 1): 0.25, (1, 2, 3): 0.25, (2, 1, 3): 0.25, (2, 2, 2): 0.25},
        values={
            "imin": (0.5000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.5000, 0.5000, 0.5000),
            "broja": (0.5000, 0.0000, 0.0000, 1.0000),
        },
    ),
    _ince2(
        label="RDNUNQXOR Griffith & Koch (2014) Fig. 6.12",
        shape=(8, 8, 16),
        cells={(1, 1, 1): 1 / 32, (1, 2, 2): 1 / 32, (2, 1, 2): 1 / 32, (2, 2, 1): 1 / 32,
               (1, 3, 3): 1 / 32, (1, 4, 4): 1 / 32, (2, 3, 4): 1 / 32, (2, 4, 3): 1 / 32,
               (3, 1, 5): 1 / 32, (3, 2, 6): 1 / 32, (4, 1, 6): 1 / 32, (4, 2, 5): 1 / 32,
               (3, 3, 7): 1 / 32, (3, 4, 8): 1 / 32, (4, 3, 8): 1 / 32, (4, 4, 7): 1 / 32,
               (5, 5, 9): 1 / 32, (5, 6, 10): 1 / 32, (6, 5, 10): 1 / 32, (6, 6, 9): 1 / 32,
               (5, 7, 11): 1 / 32, (5, 8, 12): 1 / 32, (6, 7, 12): 1 / 32, (6, 8, 11): 1 / 32,
               (7, 5, 13): 1 / 32, (7, 6, 14): 1 / 32, (8, 5, 14): 1 / 32, (8, 6, 13): 1 / 32,
               (7, 7, 15): 1 / 32, (7, 8, 16): 1 / 32, (8, 7, 16): 1 / 32, (8, 8, 15): 1 / 32},
        values={
            "imin": (2.0000, 0.0000, 0.0000, 2.0000),
            "ccs": (1.0000, 1.0000, 1.0000, 1.0000),
            "broja": (1.0000, 1.0000, 1.0000, 1.0000),
        },
    ),
    _ince2(
        label="Reduced OR (Lizier)",
        shape=(2, 2, 2),
        cells={(1, 1, 1): 0.5, (1, 2, 2): 0.25, (2, 1, 2): 0.25},
        values={
            "imin": (0.3113, 0.0000, 0.0000, 0.6887),
            "ccs": (0.0000, 0.3113, 0.3113, 0.3774),
            "broja": (0.3113, 0.0000, 0.0000, 0.6887),
        },
    ),
]

# Three sources; measure -> the 18 atoms in INCE_NODES_3 order.
INCE_THREE_SOURCE = [
    _ince3(
        label="RDN: redundant bits",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 2, (2, 2, 2, 2): 1 / 2},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                     0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince3(
        label="XORDUPLICATE Griffith & Koch (2014) Fig. 6.6",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 4, (1, 2, 1, 2): 1 / 4, (2, 1, 2, 2): 1 / 4, (2, 2, 2, 1): 1 / 4},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                     0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince3(
        label="Two separate Xors",
        shape=(2, 2, 2, 4),
        cells={(1, 1, 1, 1): 1 / 8, (1, 1, 2, 2): 1 / 8, (1, 2, 1, 4): 1 / 8, (1, 2, 2, 3): 1 / 8,
               (2, 1, 1, 3): 1 / 8, (2, 1, 2, 4): 1 / 8, (2, 2, 1, 2): 1 / 8, (2, 2, 2, 1): 1 / 8},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                     0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 1.0000, 1.0000, -1.0000),
        },
    ),
    _ince3(
        label="XORLOSSES Griffith & Koch (2014) Fig. 6.7",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 4, (1, 2, 2, 2): 1 / 4, (2, 1, 2, 2): 1 / 4, (2, 2, 1, 1): 1 / 4},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000,
                     0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince3(
        label="ANDDUPLICATE Griffith & Koch (2014) Fig. 6.13",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 4, (1, 2, 1, 1): 1 / 4, (2, 1, 2, 1): 1 / 4, (2, 2, 2, 2): 1 / 4},
        values={
            "imin": (0.3113, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 0.5000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (0.1038, 0.0000, 0.2075, 0.0000, 0.1462, 0.0000, 0.1462, -0.1462, 0.2075,
                     -0.1462, -0.1462, 0.1462, 0.1462, 0.1462, 0.0000, -0.1462, 0.0000, 0.1462),
        },
    ),
    _ince3(
        label="2 bit XOR with independent extra bit",
        shape=(2, 2, 2, 4),
        cells={(1, 1, 1, 1): 1 / 8, (1, 1, 2, 2): 1 / 8, (1, 2, 1, 3): 1 / 8, (1, 2, 2, 4): 1 / 8,
               (2, 1, 1, 3): 1 / 8, (2, 1, 2, 4): 1 / 8, (2, 2, 1, 1): 1 / 8, (2, 2, 2, 2): 1 / 8},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000,
                     0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince3(
        label="Bertschinger / Rauh XOR copied input",
        shape=(2, 2, 2, 8),
        cells={(1, 1, 1, 1): 0.25, (1, 2, 2, 4): 0.25, (2, 1, 2, 6): 0.25, (2, 2, 1, 7): 0.25},
        values={
            "imin": (1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 1.0000, 1.0000, 1.0000, 0.0000, 0.0000, 0.0000,
                     -1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
    _ince3(
        label="3-way EVEN PARITY",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 8, (1, 1, 2, 2): 1 / 8, (1, 2, 1, 2): 1 / 8, (1, 2, 2, 1): 1 / 8,
               (2, 1, 1, 2): 1 / 8, (2, 1, 2, 1): 1 / 8, (2, 2, 1, 1): 1 / 8, (2, 2, 2, 2): 1 / 8},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                     0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 1.0000),
        },
    ),
    _ince3(
        label="3-way AND",
        shape=(2, 2, 2, 2),
        cells={(1, 1, 1, 1): 1 / 8, (1, 1, 2, 1): 1 / 8, (1, 2, 1, 1): 1 / 8, (1, 2, 2, 1): 1 / 8,
               (2, 1, 1, 1): 1 / 8, (2, 1, 2, 1): 1 / 8, (2, 2, 1, 1): 1 / 8, (2, 2, 2, 2): 1 / 8},
        values={
            "imin": (0.1379, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      0.1556, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.2500),
            "ccs": (0.0241, 0.0241, 0.0241, 0.0241, 0.0000, 0.0000, 0.0000, 0.0657, 0.0657, 0.0657,
                     0.0000, 0.0834, 0.0834, 0.0834, -0.1009, -0.1009, -0.1009, 0.3028),
        },
    ),
    _ince3(
        label="XORMULTICOAL Griffith & Koch (2014) Fig. 6.14",
        shape=(4, 4, 4, 2),
        cells={(1, 1, 1, 1): 1 / 8, (4, 3, 3, 1): 1 / 8, (3, 4, 2, 1): 1 / 8, (2, 2, 4, 1): 1 / 8,
               (3, 3, 1, 2): 1 / 8, (2, 1, 3, 2): 1 / 8, (1, 2, 2, 2): 1 / 8, (4, 4, 4, 2): 1 / 8},
        values={
            "imin": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                      1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
            "ccs": (0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000,
                     1.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000, 0.0000),
        },
    ),
]

# I_sx (IDTxl's tests). outcomes: equally likely (s1, s2[, s3], t), built from the test's arrays
# X = [0, 0, 1, 1], Y = [0, 1, 0, 1] (and s1, s2, s3 of test_average_pid_three_hash).
IDTXL_SX_VALUES = [
    {"source": IDTXL_SX, "label": "test_average_pid_and: T = X and Y",
     "outcomes": [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1)],
     "values": {((1,), (2,)): 0.12255624891826572}},
    {"source": IDTXL_SX, "label": "test_average_pid_xor: T = X xor Y",
     "outcomes": [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)],
     "values": {((1,), (2,)): -0.5849625007211562}},
    {"source": IDTXL_SX, "label": "test_average_pid_source_copy: T = X",
     "outcomes": [(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 1)],
     "values": {((1,),): 0.5849625007211562, ((2,),): -0.4150374992788438,
                ((1,), (2,)): 0.4150374992788438, ((1, 2),): 0.4150374992788438}},
    {"source": IDTXL_SX, "label": "test_average_pid_three_hash: T = s1 xor s2 xor s3",
     "outcomes": [(0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (0, 1, 1, 0),
                  (1, 0, 0, 1), (1, 0, 1, 0), (1, 1, 0, 0), (1, 1, 1, 1)],
     "values": {((1,), (2,), (3,)): 0.1926450779423959,
                ((1, 2), (1, 3), (2, 3)): -0.22686079328030903,
                ((1, 2, 3),): 0.24511249783653177}},
]

# I_dep (dit's test). outcomes: (x0, x1, y) with probabilities; atoms keyed by 1-based sources.
DIT_DEP_VALUES = [
    {"source": DIT_DEP, "label": "test_pid_dep1: bivariates['reduced or']",
     "outcomes": {(0, 0, 0): 1 / 2, (0, 1, 1): 1 / 4, (1, 0, 1): 1 / 4},
     "values": {((1,), (2,)): 0.073761301440421256, ((1,),): 0.23751682301871169,
                ((2,),): 0.23751682301871169, ((1, 2),): 0.45120505252215537}},
]

# I_pm (Finn's README). outcomes: (s1, s2, t), each with 1/4, as in the README's table; values per
# part of the decomposition, keyed by Ince-style 1-based labels: the averaged atoms U1, U2, R, C
# of redAsMinIComponentTotal.m and the specificity (r+, u+, c+) and ambiguity (r-, u-, c-)
# atoms that redAsMinIComponent.m prints (the same in every row).
FINN_PM_VALUES = [
    {"source": FINN_PM, "label": "README example: t = 2 s1 + s2 (two-bit copy, Tbc)",
     "outcomes": [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)],
     "values": {
         "atoms": {"{1}{2}": 1, "{1}": 0, "{2}": 0, "{12}": 1},
         "informative": {"{1}{2}": 1, "{1}": 0, "{2}": 0, "{12}": 1},
         "misinformative": {"{1}{2}": 0, "{1}": 0, "{2}": 0, "{12}": 0},
     }},
]

# Kolchinsky's comparison tables: printed column -> pidkit measure (Istar is not transcribed).
KOLCHINSKY_COLUMNS = {"WB": "imin", "MMI": "mmi", "BROJA": "broja", "Proj": "proj",
                      "Iwedge": "wedge", "CCS": "ccs", "Ipm": "pm", "Idep": "dep", "GH": "gh"}


def _kolchinsky_uniform(outcomes):
    return {o: 1 / len(outcomes) for o in outcomes}


# pmf of Unq1alpha and COPYalpha: p = [0.7, 0.3, 0.3, 0.7] / 2
_KOLCHINSKY_ALPHA = (7 / 20, 3 / 20, 3 / 20, 7 / 20)

# outcomes: dit strings "x1 x2 y" -> probability; values: printed column -> redundancy {1}{2}.
KOLCHINSKY_TWO_SOURCE = [
    {"source": KOLCHINSKY, "label": "AND (dit bivariates['and'])",
     "outcomes": _kolchinsky_uniform(["000", "010", "100", "111"]),
     "values": {"WB": 0.311, "MMI": 0.311, "BROJA": 0.311, "Proj": 0.311, "Iwedge": 0.000,
                "CCS": 0.104, "Ipm": 0.561, "Idep": 0.082, "GH": 0.123}},
    {"source": KOLCHINSKY, "label": "sum (Y = X1 + X2)",
     "outcomes": _kolchinsky_uniform(["000", "011", "101", "112"]),
     "values": {"WB": 0.500, "MMI": 0.500, "BROJA": 0.500, "Proj": 0.500, "Iwedge": 0.000,
                "CCS": 0.000, "Ipm": 0.500, "Idep": 0.189, "GH": 0.000}},
    {"source": KOLCHINSKY, "label": "Unq1 (dit bivariates['unique 1'], Y = X1)",
     "outcomes": _kolchinsky_uniform(["000", "011", "100", "111"]),
     "values": {"WB": 0.000, "MMI": 0.000, "BROJA": 0.000, "Proj": 0.000, "Iwedge": 0.000,
                "CCS": 0.000, "Ipm": 1.000, "Idep": 0.000, "GH": 0.000}},
    {"source": KOLCHINSKY, "label": "Unq1alpha (Y = X1, correlated sources)",
     "outcomes": dict(zip(["000", "011", "100", "111"], _KOLCHINSKY_ALPHA, strict=True)),
     "values": {"WB": 0.119, "MMI": 0.119, "BROJA": 0.119, "Proj": 0.119, "Iwedge": 0.000,
                "CCS": 0.340, "Ipm": 1.000, "Idep": 0.119, "GH": 0.119}},
    {"source": KOLCHINSKY, "label": "COPY (dit bivariates['cat'], Y = (X1, X2))",
     "outcomes": _kolchinsky_uniform(["000", "011", "102", "113"]),
     "values": {"WB": 1.000, "MMI": 1.000, "BROJA": 0.000, "Proj": -0.000, "Iwedge": 0.000,
                "CCS": 0.000, "Ipm": 1.000}},
    {"source": KOLCHINSKY, "label": "COPYalpha (Y = (X1, X2), correlated sources)",
     "outcomes": dict(zip(["000", "011", "102", "113"], _KOLCHINSKY_ALPHA, strict=True)),
     "values": {"WB": 1.000, "MMI": 1.000, "BROJA": 0.119, "Proj": 0.119, "Iwedge": 0.000,
                "CCS": 0.340, "Ipm": 1.000}},
]

# outcomes: dit strings "x1 x2 x3 y"; values: printed column -> redundancy {1}{2}{3}.
KOLCHINSKY_THREE_SOURCE = [
    {"source": KOLCHINSKY, "label": "AND3 (Y = X1 AND X2 AND X3)",
     "outcomes": _kolchinsky_uniform(["0000", "0010", "0100", "0110",
                                      "1000", "1010", "1100", "1111"]),
     "values": {"WB": 0.138, "MMI": 0.138, "Iwedge": 0.000, "Ipm": 0.294, "CCS": 0.024}},
    {"source": KOLCHINSKY, "label": "SUM3 (dit trivariates['sum'])",
     "outcomes": _kolchinsky_uniform(["0000", "0011", "0101", "0112",
                                      "1001", "1012", "1102", "1113"]),
     "values": {"WB": 0.311, "MMI": 0.311, "Iwedge": 0.000, "Ipm": 0.561, "CCS": 0.000}},
    {"source": KOLCHINSKY, "label": "Overlap (X1 = (A,B), X2 = (A,C), X3 = (A,D), Y = (X1,X2,X3))",
     "outcomes": _kolchinsky_uniform(["0000", "0011", "0102", "0113", "1004", "1015", "1106",
                                      "1117", "2228", "2239", "232A", "233B", "322C", "323D",
                                      "332E", "333F"]),
     "values": {"WB": 2.000, "MMI": 2.000, "Iwedge": 1.000, "Ipm": 2.000, "CCS": 1.000}},
]

# MAXENT3D_PID's returned quantities -> the Williams-Beer atoms they sum (1-based labels).
MAXENT3D_QUANTITIES = {
    "CI": ("{12}{13}{23}", "{12}{13}", "{12}{23}", "{13}{23}", "{12}", "{13}", "{23}", "{123}"),
    "UIX": ("{1}", "{1}{23}"),
    "UIY": ("{2}", "{2}{13}"),
    "UIZ": ("{3}", "{3}{12}"),
    "UIXY": ("{1}{2}",),
    "UIXZ": ("{1}{3}",),
    "UIYZ": ("{2}{3}",),
    "SI": ("{1}{2}{3}",),
}


def _maxent3d_copy(n_x, n_y, n_z):
    # test_copy_gate.py: returndictdev['UIX'] = 100*abs(returndict['UIX'] - log2(n_X)), ...,
    # and abs(returndict[key] - 0.) for CI, SI, UIXY, UIXZ, UIYZ
    return {"source": MAXENT3D_COPY, "label": f"Copy(X, Y, Z), |X|, |Y|, |Z| = {n_x}, {n_y}, {n_z}",
            "sizes": (n_x, n_y, n_z),
            "values": {"CI": 0.0, "SI": 0.0, "UIXY": 0.0, "UIXZ": 0.0, "UIYZ": 0.0,
                       "UIX": math.log2(n_x), "UIY": math.log2(n_y), "UIZ": math.log2(n_z)}}


MAXENT3D_COPY_VALUES = [_maxent3d_copy(*sizes) for sizes in
                        ((2, 2, 2), (2, 3, 4), (4, 3, 2), (3, 3, 3))]
