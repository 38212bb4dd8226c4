"""toothmcl_data: turn raw CBCT + intraoral-scan exports into a de-identified, registered, paired dataset.

Pipeline stages live in sub-packages named after what they do: ``io`` (readers), ``fdi`` (tooth numbering and
label schemes), ``synth`` (synthetic paired patients), ``report`` (pictures), ``cli`` (``toothmcl-data``).
"""

__version__ = "0.1.0"
