"""What every output says of itself: its music is AI-generated, and by what.

Two markings, both machine-readable (EU AI Act Art. 50(2) asks that synthetic audio be marked
so in a machine-readable way):

- Container metadata, always: ``Marking`` builds the tags once per run from the fields every
  sidecar shares, and the ffmpeg call that muxes an output writes them (no extra pass). What a
  container keeps differs: MP4/MOV/M4A keep arbitrary keys only with ``-movflags
  use_metadata_tags`` (then ``ai_generated`` and ``digital_source_type`` survive), Matroska and
  WebM keep every tag, AVI only ``comment`` and ``encoded_by`` (and the audio stream's title),
  MPEG-TS only its program's ``service_provider`` and ``service_name``.
- A C2PA manifest, with ``--sign-cert`` and ``--sign-key``: ``Signer`` embeds a signed manifest
  in each output before it is published (a ``c2pa.created`` action with the IPTC digital source
  type, the generator's name and version). Signing writes the file anew with the manifest box
  added; no packet of audio or video changes. C2PA has no binding for Matroska, WebM or MPEG-TS:
  those outputs are left unsigned, and their sidecar says so.

The certificate chain and the private key are read where the outputs are made, from a local
path or an ``s3://`` URI, and kept in that process's memory only: never in Ray's runtime
environment, a log line or a sidecar (which names the certificate's subject). The driver reads
them first (``check_signing``), so that credentials that cannot sign stop a run before any
input is touched.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import wave
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cotvtm.errors import CotvtmError, one_line, printable

GENERATOR = "cotvtm"
AUDIO_TITLE = "AI-generated music"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = IPTC + "trainedAlgorithmicMedia"  # the music alone: an image's .m4a
COMPOSITE = IPTC + "compositeWithTrainedAlgorithmicMedia"  # a picture of the input with the music as its audio
MUSIC_ONLY = {".m4a", ".wav"}  # an image's music; the music stem beside a timeline
MOV_FAMILY = {".mp4", ".m4v", ".mov", ".m4a"}  # the mov muxer: arbitrary keys need use_metadata_tags
SIGNABLE = {".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime", ".avi": "video/x-msvideo",
            ".m4a": "audio/mp4", ".wav": "audio/wav"}  # the output containers C2PA binds a manifest to
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
CREDENTIAL_MAX_BYTES = 1 << 20  # a chain of a dozen certificates is some 20 KiB, a key under 4 KiB: a path
# that names something else (a video) is refused by its size instead of being read into memory
TRIAL_FRAMES = 160  # the silent WAV the driver signs to try the credentials: 10 ms at 16 kHz, signed in milliseconds


def source_type(ext: str) -> str:
    """The IPTC digital source type of an output: the music alone is trained algorithmic media;
    a video (or still) whose audio is, or carries, the music is a composite with it."""
    return TRAINED if ext.lower() in MUSIC_ONLY else COMPOSITE


def _model_name(ref: str | None) -> str:
    """A hub id as it is; a local folder or an ``s3://`` prefix by its last name (a machine's
    paths stay out of published files)."""
    if not ref:
        return "none"
    text = str(ref).rstrip("/")
    return text if _HUB_ID.fullmatch(text) else PurePosixPath(text).name or text


def conditioned_by(sidecar: dict) -> str:
    """What chose the music, as the run's config says it was used: the teacher (its model, on
    which captioner's captions), else the prior ``--prior`` gave: retrieval over its bank, a
    distilled prior, or the untrained one. A teacher run resolves a retrieval prior it never
    uses, so the config's ``conditioning`` decides, not the models listed."""
    config, models = sidecar.get("config") or {}, sidecar.get("models") or {}
    if config.get("conditioning") == "teacher":
        captioner = _model_name(models["captioner"]) if models.get("captioner") else "retrieval"
        model = one_line(printable(config.get("teacher_model")), 120)  # the user's words, in a tag
        return f"conditioning teacher {model} over captions by {captioner}"
    if models.get("bank"):  # the retrieval prior, and the bank it retrieved from
        return f"prior retrieval over {_model_name(models['bank'])}"
    return f"prior {_model_name(models.get('prior')) if sidecar.get('prior_trained') else 'untrained'}"


@dataclass(frozen=True)
class Marking:
    """The tags every output of a run carries, from the fields every sidecar shares."""

    version: str
    comment: str

    @classmethod
    def of(cls, sidecar: dict) -> Marking:
        version = str(sidecar.get("cotvtm", "unknown"))
        models = sidecar.get("models") or {}
        decoder = (f"Stable Audio {_model_name(models['stable_audio'])}" if models.get("stable_audio")
                   else f"MusicGen {_model_name(models.get('musicgen'))}")
        comment = f"Music generated by AI ({GENERATOR} {version}; decoder {decoder}; {conditioned_by(sidecar)})"
        return cls(version, comment)

    @property
    def generator(self) -> str:
        return f"{GENERATOR} {self.version}"

    def tags(self, ext: str) -> dict:
        """The tags written into an output with extension ``ext``: the container's and its
        audio stream's (what each container keeps: see the module's docstring)."""
        ext = ext.lower()
        if ext == ".wav":  # what RIFF INFO keeps (ICMT, ITCH, INAM): the music stem beside a timeline
            return {"format": {"comment": self.comment, "encoded_by": self.generator, "title": AUDIO_TITLE},
                    "audio": {}}
        container = {"comment": self.comment, "description": self.comment, "encoded_by": self.generator,
                     "ai_generated": "audio", "digital_source_type": source_type(ext)}
        if ext == ".ts":
            container.update(service_provider=self.generator, service_name=AUDIO_TITLE)
        return {"format": container, "audio": {"handler_name": AUDIO_TITLE, "title": AUDIO_TITLE}}

    def ffmpeg_args(self, ext: str) -> list[str]:
        """The output options that write ``tags(ext)`` (the audio is the output's first audio
        stream); ``-movflags`` is the caller's, with ``movflags(ext)`` added."""
        tags = self.tags(ext)
        args = [a for k, v in tags["format"].items() for a in ("-metadata", f"{k}={v}")]
        return args + [a for k, v in tags["audio"].items() for a in ("-metadata:s:a:0", f"{k}={v}")]

    @staticmethod
    def movflags(ext: str) -> str:
        """What ``-movflags`` needs so that the mov muxer keeps every tag."""
        return "+use_metadata_tags" if ext.lower() in MOV_FAMILY else ""


@dataclass(frozen=True)
class SigningFiles:
    """Where the signing certificate chain (PEM, the signing certificate first) and its private
    key (PEM) are: local paths or ``s3://`` URIs. Only the locations travel; the files are read
    by ``Signer.load`` where the outputs are made."""

    cert: str
    key: str
    endpoint_url: str | None = None


class Signer:
    """Signs outputs with a C2PA manifest, from a certificate chain and a private key held in
    memory; ``describe()`` is what sidecars say of it."""

    def __init__(self, cert_pem: bytes, key_pem: bytes, marking: Marking,
                 names: tuple[str, str] = ("--sign-cert", "--sign-key")):
        import c2pa

        self.marking, self.names = marking, names
        self.subject, self.algorithm = _inspect(cert_pem, key_pem, *names)
        self.context = c2pa.Context.from_dict({
            "builder": {"thumbnail": {"enabled": False}},
            # trust is the reader's to judge (a private CA is fine); the signature is still checked
            "verify": {"verify_after_sign": True, "verify_trust": False, "remote_manifest_fetch": False,
                       "ocsp_fetch": False}})
        try:
            info = c2pa.C2paSignerInfo(getattr(c2pa.C2paSigningAlg, self.algorithm), cert_pem, key_pem, None)
            self.signer = c2pa.Signer.from_info(info)
        except (c2pa.C2paError, ValueError, TypeError) as exc:
            raise CotvtmError(f"{names[0]} with {names[1]}: cannot sign: {_withheld(exc, key_pem)}") from None

    @classmethod
    def load(cls, files: SigningFiles, marking: Marking) -> Signer:
        """Read the certificate chain and key and make the signer; a CotvtmError naming the file
        and the reason otherwise (one that pickles: an actor's failure reaches the driver whole)."""
        names = f"--sign-cert {files.cert}", f"--sign-key {files.key}"
        return cls(_read_credential(names[0], files.cert, files.endpoint_url),
                   _read_credential(names[1], files.key, files.endpoint_url), marking, names)

    def trial(self) -> None:
        """Sign a tiny silent WAV in memory (and verify it, as every signing does): what C2PA
        asks of the certificate (key usage, extended key usage, not a CA) is checked before a
        run spends any work, not at its first output."""
        import c2pa

        source, signed = io.BytesIO(), io.BytesIO()
        with wave.open(source, "wb") as audio:
            audio.setnchannels(1)
            audio.setsampwidth(2)
            audio.setframerate(16000)
            audio.writeframes(bytes(2 * TRIAL_FRAMES))
        source.seek(0)
        try:
            builder = c2pa.Builder(self.manifest(".m4a"), context=self.context)
            builder.sign(self.signer, "audio/wav", source, signed)
        except c2pa.C2paError as exc:
            raise CotvtmError(f"{self.names[0]} with {self.names[1]}: C2PA refuses to sign with them ({exc})") from None

    def describe(self) -> dict:
        return {"signer": self.subject, "algorithm": self.algorithm}

    def manifest(self, ext: str) -> dict:
        version = self.marking.version
        action = {"action": "c2pa.created", "digitalSourceType": source_type(ext),
                  "softwareAgent": {"name": GENERATOR, "version": version}, "description": self.marking.comment}
        return {"claim_generator_info": [{"name": GENERATOR, "version": version}], "title": AUDIO_TITLE,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]}

    def sign(self, path: str | os.PathLike) -> dict:
        """Embed a signed manifest in the file at ``path`` (rewritten whole, under a temporary
        name then renamed; the media packets unchanged); what the sidecar says of it. A
        container C2PA has no binding for is left as it is, with a note."""
        import c2pa

        path = Path(path)
        ext = path.suffix.lower()
        if ext not in SIGNABLE:
            return {"signed": False, "note": f"C2PA has no binding for {ext} files: not signed (the container "
                                             "metadata still marks the music as AI-generated)"}
        signed = path.with_name(f".{path.name}.signing{ext}")
        try:
            builder = c2pa.Builder(self.manifest(ext), context=self.context)
            with open(path, "rb") as source, open(signed, "w+b") as dest:
                builder.sign(self.signer, SIGNABLE[ext], source, dest)
            os.replace(signed, path)
        except c2pa.C2paError as exc:
            raise CotvtmError(f"C2PA signing failed: {exc}") from None
        finally:
            signed.unlink(missing_ok=True)
        return {"signed": True, "action": "c2pa.created", "digital_source_type": source_type(ext)}


def check_signing(files: SigningFiles | None) -> None:
    """Load the signer where the run starts and try it on a tiny file: missing, unreadable,
    mismatched, out-of-date or unusable credentials stop the run in seconds, before any input
    is touched, Ray started or the output written. The Mux actors load them again (only the
    locations travel)."""
    if files is not None:
        Signer.load(files, Marking("trial", "a trial of the signing credentials")).trial()


def _read_credential(name: str, location: str, endpoint_url: str | None) -> bytes:
    """A credential file's bytes (``name``: the option and the location, for messages). It is
    the user's configuration, not an input: a link is followed wherever it points (certbot's
    ``live/`` names link into ``../archive/``), where an input must stay in INPUT. Only a
    regular file is read (a FIFO would stall the run), within CREDENTIAL_MAX_BYTES."""
    from cotvtm.jsonl import TextError, read_bounded
    from cotvtm.storage import is_s3_uri

    try:
        return read_bounded(location, endpoint_url, CREDENTIAL_MAX_BYTES)
    except TextError as exc:
        missing = not is_s3_uri(location) and not os.path.exists(location)
        raise CotvtmError(f"{name}: {'file not found' if missing else exc.reason}") from None


def _inspect(cert_pem: bytes, key_pem: bytes, cert_name: str, key_name: str) -> tuple[str, str]:
    """The signing certificate's subject, and the C2PA algorithm its key signs with (EC P-256,
    P-384, P-521: ES256/384/512; RSA: PS256; Ed25519). A chain that does not parse, a
    certificate out of date, or a key that is not the certificate's is refused here, with a
    reason that never shows the key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise CotvtmError(f"{cert_name}: not a PEM certificate chain (every certificate in it must parse)") from None
    for number, cert in enumerate(chain, 1):
        _in_date(cert, f"{cert_name}: certificate {number} of {len(chain)} ({cert.subject.rfc4514_string()})")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise CotvtmError(f"{key_name}: not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, public)
            != chain[0].public_key().public_bytes(serialization.Encoding.DER, public)):
        raise CotvtmError(f"{key_name}: not the key of the first certificate in {cert_name}")
    return chain[0].subject.rfc4514_string(), _algorithm(key, key_name)


def _in_date(cert, name: str) -> None:
    """Refuse a certificate that is not valid now: a manifest signed with it would not validate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if now < cert.not_valid_before_utc:
        raise CotvtmError(f"{name} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now > cert.not_valid_after_utc:
        raise CotvtmError(f"{name} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")


def _algorithm(key, key_name: str) -> str:
    """The C2PA signing algorithm of ``key``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    algorithm = None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name)
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = "PS256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = "ED25519"
    if algorithm is None:
        raise CotvtmError(f"{key_name}: C2PA signs with EC P-256/P-384/P-521, RSA (PSS) or Ed25519 keys only")
    return algorithm


def _withheld(exc: Exception, key_pem: bytes) -> str:
    """An error's message, unless it quotes any of the key."""
    text = str(exc)
    body = [line for line in key_pem.decode("ascii", "replace").splitlines() if line and "-----" not in line]
    return "(details withheld: the message quoted the key)" if any(line in text for line in body) else text
