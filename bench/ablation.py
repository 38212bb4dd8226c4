"""Pretrained vs scratch fine-tuning on synthetic patients (see ``toothmcl_models.ablation``).

OMP_NUM_THREADS=2 .venv/bin/python bench/ablation.py                       # the CPU preset (k 1,2,4,8; 3 seeds)
.venv/bin/python bench/ablation.py --ks 1,2 --seeds 1 --pretrain-patients 8 --test-patients 1 \
    --pretrain-steps 10 --cbct-steps 20 --ios-steps 30 --threads 1         # a 10-minute smoke run
"""

from toothmcl_models.ablation import main

if __name__ == "__main__":
    main()
