"""Hushpost's cryptography, all of it: the rest of the code calls these modules, never a cipher or
an HMAC of its own (Django's signing serves one short-lived token, the resend request's).

* :mod:`.aead`: AES-256-GCM seal and open (``cryptography``), the one format of a stored blob.
* :mod:`.master`: the master key, and the previous ones accepted while it takes over.
* :mod:`.derivation`: the derivation root and the keys derived from it (audit trail, provisioning).
* :mod:`.keys`: the organisation keys, wrapped under the master key, versioned and cached.
* :mod:`.envelope`: each message's data key under its organisation key; fields and file keysets
  sealed under the data key.
* :mod:`.streams`: files, streamed through Tink's streaming AEAD.
* :mod:`.macs`: keyed hashes (audit trail, sessions, temporary passwords, recovery codes, regions).
* :mod:`.labels`: every associated-data string and derivation label, each written once.

The package rests on ``lib`` and on two models of ``orgs`` only: ``OrgKey`` and ``DerivationRoot``.
"""
