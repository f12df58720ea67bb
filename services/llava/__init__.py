"""The llava worker: OpenAI-compatible visual chat (LLaVA family) over transformers or an upstream.

Layout: ``settings`` (``LLAVA_*``), ``conversation`` (request checks, image policy, history
truncation; no torch), ``textstream`` (incremental detokenizer, stop strings), ``hf`` (the
hooks into ``generate``), ``backend`` (transformers), ``upstream`` (OpenAI-compatible
forwarding), ``service`` (the contract over either backend), ``app`` (thin routes).

Decisions, and why:

- **Images are data URIs.** http(s) URLs get a 400 unless ``LLAVA_ALLOW_REMOTE_IMAGES``: a
  worker fetching arbitrary URLs is a server-side request forgery waiting to happen.
- **Several images per conversation.** The gateway sends whole histories in which later turns
  bring new versions of the image. With ``LLAVA_IMAGE_POLICY=latest`` (default) only the
  latest image's pixels reach the model and each older image part becomes a short text note,
  because LLaVA-1.5/NeXT were trained with one image per conversation and several images
  also multiply the prompt (576+ tokens each). ``all`` feeds every image, for multi-image
  models (LLaVA-Interleave: the ``cpu`` profile sets it).
- **Long histories** lose their oldest turns (a turn = a user message and the replies after
  it) until the prompt fits ``context - min(max_tokens, context / 4)``; system messages stay,
  and the latest image moves into the first kept user turn if its own turn goes. The reply
  then gets the rest of the context (``finish_reason: length`` if it runs out). The number of
  dropped turns is the ``X-LVI-Truncated-Turns`` header (0 when nothing was dropped). Only if
  the latest turn alone does not fit is the request refused (400 ``context_length_exceeded``).
- **User text cannot forge control tokens**: the prompt is built with
  ``apply_chat_template(..., sanitize_control_tokens=True)``, so an ``<image>`` or ``</s>``
  typed by a user is plain text.
- **Streaming** uses a transformers streamer (``DeltaStreamer``) that runs inside ``generate``
  and decodes incrementally (TGI/vLLM's windowed scheme), so each token leaves as soon as it
  forms text; ``TextStreamer``/``TextIteratorStreamer`` would hold text back until a space
  and need a second thread whose lifetime the admission slot could not see.
- **Cancellation**: a stopping criterion polls the job's cancel flag, which a client
  disconnect (SSE generator closed) or the deadline sets; the slot frees when ``generate``
  returns. Counters in ``/v1/info`` and ``/metrics`` show it.
- **Seeds** drive a per-request ``torch.Generator`` inside a logits processor that samples
  (temperature, top-p) and leaves one finite logit for greedy ``generate`` to pick: no global
  RNG, so concurrent requests never disturb each other's seeds and no lock is needed.
- **Upstream** (``LLAVA_BACKEND=openai``): the same validation and admission control, then
  the request (and its SSE stream, chunk by chunk) passes through; the upstream's 4xx keep
  their status and code, its failures become 502, its silence past the deadline 504.
"""
