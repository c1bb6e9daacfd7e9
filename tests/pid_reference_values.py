"""Literature values of I_min, MMI and I_ccs on the canonical gates, in bits.

Atoms are listed as (redundancy {0}{1}, unique {0}, unique {1}, synergy {0:1}). Sources:

- I_min on XOR, AND, RDN: Williams & Beer 2010 (arXiv:1004.2515); on UNQ (two-bit copy, 1 bit
  of redundancy and 1 of synergy): Harder, Salge & Polani 2013 (Phys. Rev. E 87, 012130).
- MMI: Barrett 2015 (Phys. Rev. E 91, 052802), min_i I(Y;X_i) at the bottom; the entries are
  closed forms from the gates' mutual informations (AND/OR: h(1/4) - 1/2 = 0.311278).
- I_ccs on XOR, AND (0.1038 / 0.2075 / 0.2075 / 0.2925), RDN, UNQ: Ince 2017 (Entropy 19(7),
  318).
- The other entries (SUM, XORAND, RDNXOR, RDNUNQXOR, W, COPY1 and the three-source parity,
  redundancy and copy gates) are the values of dit 2.3 (PID_WB, PID_MMI, PID_CCS), computed once
  with dit when these fixtures were written (10 digits); tests do not run dit for them.
"""

import math

H14 = -0.25 * math.log2(0.25) - 0.75 * math.log2(0.75)   # h(1/4) = I(Y;X0,X1) on AND
AND_CCS_RED = 0.1037593748  # Ince 2017
AND_CCS_UNI = 0.2075187496
AND_CCS_SYN = 0.2924812504

# gate -> measure -> (red {0}{1}, uni {0}, uni {1}, syn {0:1})
TWO_SOURCE = {
    "XOR": {"imin": (0, 0, 0, 1), "mmi": (0, 0, 0, 1), "ccs": (0, 0, 0, 1)},
    "AND": {"imin": (H14 - 0.5, 0, 0, 0.5), "mmi": (H14 - 0.5, 0, 0, 0.5),
            "ccs": (AND_CCS_RED, AND_CCS_UNI, AND_CCS_UNI, AND_CCS_SYN)},
    "OR": {"imin": (H14 - 0.5, 0, 0, 0.5), "mmi": (H14 - 0.5, 0, 0, 0.5),
           "ccs": (AND_CCS_RED, AND_CCS_UNI, AND_CCS_UNI, AND_CCS_SYN)},
    "RDN": {"imin": (1, 0, 0, 0), "mmi": (1, 0, 0, 0), "ccs": (1, 0, 0, 0)},
    "UNQ": {"imin": (1, 0, 0, 1), "mmi": (1, 0, 0, 1), "ccs": (0, 1, 1, 0)},
    "COPY1": {"imin": (0, 1, 0, 0), "mmi": (0, 1, 0, 0), "ccs": (0, 1, 0, 0)},
    "SUM": {"imin": (0.5, 0, 0, 1), "mmi": (0.5, 0, 0, 1), "ccs": (0, 0.5, 0.5, 0.5)},
    "XORAND": {"imin": (0.5, 0, 0, 1), "mmi": (0.5, 0, 0, 1), "ccs": (0, 0.5, 0.5, 0.5)},
    "RDNXOR": {"imin": (1, 0, 0, 1), "mmi": (1, 0, 0, 1), "ccs": (1, 0, 0, 1)},
    "RDNUNQXOR": {"imin": (2, 0, 0, 2), "mmi": (2, 0, 0, 2), "ccs": (1, 1, 1, 1)},
    "W": {"imin": (0.2516291674, 0, 0, 0.6666666667), "mmi": (0.2516291674, 0, 0, 0.6666666667),
          "ccs": (0, 0.2516291674, 0.2516291674, 0.4150374993)},
}

# gate -> measure -> {label: value}; every other atom of the 18 is 0.
THREE_SOURCE = {
    "PARITY3": {m: {"{0:1:2}": 1.0} for m in ("imin", "mmi", "ccs")},
    "RDN3": {m: {"{0}{1}{2}": 1.0} for m in ("imin", "mmi", "ccs")},
    "COPY3": {"imin": {"{0}{1}{2}": 1.0, "{0:1}{0:2}{1:2}": 1.0, "{0:1:2}": 1.0},
              "mmi": {"{0}{1}{2}": 1.0, "{0:1}{0:2}{1:2}": 1.0, "{0:1:2}": 1.0},
              "ccs": {"{0}": 1.0, "{1}": 1.0, "{2}": 1.0}},
}
