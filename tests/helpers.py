"""Small helpers shared by the test modules."""

import datetime
import json
import subprocess
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def ffprobe(path) -> dict:
    """ffprobe's view of a file: every stream with its packets counted, and the container."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-show_format",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                                                         "cotvtm tests")])


def _certificate(subject: str, key, issuer: str, issuer_key, ca: bool, days: tuple[int, int] = (-1, 30)):
    """A certificate with the profile C2PA asks of its signers: v3, key usage critical
    (digitalSignature for a signer), an extended key usage (emailProtection), key identifiers;
    valid from ``days[0]`` to ``days[1]`` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    built = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now + datetime.timedelta(days=days[0]))
             .not_valid_after(now + datetime.timedelta(days=days[1]))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(**usage), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if not ca:
        built = (built.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False))
    return built.sign(issuer_key, hashes.SHA256())


def signing_credentials(folder: Path, days: tuple[int, int] = (-1, 30)) -> dict:
    """A root CA and an ES256 signing certificate it issued (valid over ``days`` from now), made
    here: the chain and the key as files in ``folder`` (``cert``, ``key``), the root's PEM
    (``root``) and the key's (``key_pem``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _certificate("cotvtm test root", root_key, "cotvtm test root", root_key, ca=True)
    signer = _certificate("cotvtm test signer", key, "cotvtm test root", root_key, ca=False, days=days)
    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (folder / "chain.pem").write_bytes(pem(signer) + pem(root))
    (folder / "signer.key").write_bytes(key_pem)
    return {"cert": str(folder / "chain.pem"), "key": str(folder / "signer.key"), "root": pem(root).decode(),
            "key_pem": key_pem}


def certbot_layout(credentials: dict, folder: Path) -> tuple[str, str]:
    """``credentials``' chain and key as certbot keeps them: ``live/example/fullchain.pem`` and
    ``privkey.pem``, links to ``../../archive/example/fullchain1.pem`` and ``privkey1.pem``
    (out of their folder); the two links' paths."""
    archive, live = folder / "archive" / "example", folder / "live" / "example"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    (archive / "fullchain1.pem").write_bytes(Path(credentials["cert"]).read_bytes())
    (archive / "privkey1.pem").write_bytes(credentials["key_pem"])
    (live / "fullchain.pem").symlink_to("../../archive/example/fullchain1.pem")
    (live / "privkey.pem").symlink_to("../../archive/example/privkey1.pem")
    return str(live / "fullchain.pem"), str(live / "privkey.pem")


def read_c2pa(path, mime: str, root_pem: str | None):
    """The C2PA manifest store of a file as c2pa reads it, trusting ``root_pem`` as an anchor
    when given: (validation state, active manifest, the whole store as JSON)."""
    import c2pa

    context = c2pa.Context.from_dict({"trust": {"user_anchors": root_pem}}) if root_pem else c2pa.Context()
    with open(path, "rb") as stream:
        reader = c2pa.Reader(mime, stream, context=context)
        return reader.get_validation_state(), reader.get_active_manifest(), json.loads(reader.json())


def ends_in_silence(path, seconds: float = 0.05, dbfs: float = -50.0) -> bool:
    """Whether the first audio stream's last ``seconds`` stay below ``dbfs``, as ffmpeg decodes it."""
    import numpy as np

    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "8000",
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    audio = np.frombuffer(raw, np.float32)
    return len(audio) > 0 and float(np.abs(audio[-int(seconds * 8000):]).max()) < 10 ** (dbfs / 20)


def parsed_config(args):
    """The soundtrack configurations a parsed command line asks for, checked (as the API would
    make them): ``(SoundtrackConfig, Resources)``."""
    from cotvtm.commands.soundtrack import settings
    from cotvtm.settings import configure

    cfg, res, _ = configure(**settings(args))
    return cfg, res
