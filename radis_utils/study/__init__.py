"""The SmolLM2 study: does vanilla fine-tuning make a real chat model forget, and do
RaDis, Seq-KD and SDFT prevent it, answered with intervals on SmolLM2-135M-Instruct on CPU.

``pilot``: the backbone measured once before any training (floors, per-item spreads, generation
rates); ``power``: the sizes those spreads call for. Later stages read the pilot's record, never
its code.
"""
