"""rsrl_jax: repetitive self-revised learning for imbalanced photo-aesthetics classification."""
