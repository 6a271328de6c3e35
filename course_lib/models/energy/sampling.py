r"""MCMC samplers for energy-based models (topic 03): Metropolis-Hastings, Gibbs, Langevin.

Every sampler here has one shape: it takes

* an **energy** -- a model with ``energy(x) -> (B,)`` (or, for block Gibbs, an RBM with its
  conditionals), or any callable ``x -> (B,)``;
* a **state** -- a batch of chains (B, ...), one chain per row, which it does not modify; and
* a **generator** -- a ``torch.Generator``, by keyword, the only source of randomness,

plus its own settings by keyword (number of steps, step size, temperature), and returns the
new state (and, for samplers that accept or reject, the acceptance rate). Because the state
is an ordinary tensor, persistent chains carry it from one training step to the next, and a
checkpoint saves it with the generator's state, so that training resumes exactly.

Each sampler is tested against a distribution it must leave invariant, on a tiny case whose
probabilities are known exactly (a few discrete states, a Gaussian).
"""
