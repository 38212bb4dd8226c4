"""Pretrained vs scratch fine-tuning on synthetic patients (see ``toothmcl_models.ablation``).

OMP_NUM_THREADS=2 .venv/bin/python bench/ablation.py                       # the CPU preset (k 1,2,4,8; 3 seeds)
.venv/bin/python bench/ablation.py --set ks=[1,2] --set seeds=[1] --set pretrain_patients=8 --set test_patients=1 \
    --set pretrain_steps=10 --set cbct_steps=20 --set ios_steps=30 --set threads=1   # a 10-minute smoke run
"""

from toothmcl_models.ablation import main

if __name__ == "__main__":
    main()
