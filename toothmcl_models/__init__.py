"""toothmcl_models: encoders, losses and the pretraining / fine-tuning entry points (reads data only through
``toothmcl_data.stream``)."""
