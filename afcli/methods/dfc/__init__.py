"""Dense functional correspondence (Stojanov et al., ../shared/papers/dense-functional-correspondence.md
§4): a function-conditioned head on a frozen backbone, trained on pseudo-labelled functional parts
(``afcli pseudolabel``) and multi-view correspondences of kept renders — ``afcli finetune dfc``,
scored by ``afcli eval dfc``."""
