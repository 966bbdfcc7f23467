"""Report text: sections, sentences, sampling, labeler, perturbations, tokenizers."""
