"""Pretrained vs scratch fine-tuning on synthetic patients (see ``toothmcl_models.ablation``).

.venv/bin/python bench/ablation.py            # CPU preset, 3 seeds
.venv/bin/python bench/ablation.py --full     # GPU preset
"""

from toothmcl_models.ablation import main

if __name__ == "__main__":
    main()
