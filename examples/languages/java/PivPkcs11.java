// SunPKCS11 with OpenSC's PKCS#11 module against a vscard card: log in,
// sign with the PIV Authentication key (slot 9A), verify the signature with
// the certificate's public key, and validate that certificate against a
// truststore holding the environment's Root CA (made with keytool from
// `vscard export-ca`). Run:
//
//   VSCARD_PIN=123456 java PivPkcs11.java truststore.p12 changeit sub.pem
//
// The PIN comes from the environment, never the command line.
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.X509Certificate;
import java.util.Collections;
import java.util.List;

public class PivPkcs11 {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            throw new IllegalArgumentException("usage: PivPkcs11 TRUSTSTORE.p12 STOREPASS SUB.pem");
        }
        String pin = System.getenv("VSCARD_PIN");
        if (pin == null) {
            throw new IllegalArgumentException("set VSCARD_PIN to the card's PIN");
        }
        // An inline configuration ("--" first) instead of a file.
        Provider provider = Security.getProvider("SunPKCS11").configure(
                "--name=vscard\nlibrary=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so\nslotListIndex=0\n");
        KeyStore card = KeyStore.getInstance("PKCS11", provider);
        card.load(null, pin.toCharArray());

        // OpenSC names slot 9A's key "PIV AUTH key" and its certificate
        // "Certificate for PIV Authentication"; the KeyStore alias is the
        // certificate's label.
        String alias = null;
        for (String a : Collections.list(card.aliases())) {
            System.out.println("alias: " + a);
            if (a.contains("PIV Authentication")) {
                alias = a;
            }
        }
        if (alias == null) {
            throw new IllegalStateException("no PIV Authentication certificate on the card");
        }
        PrivateKey key = (PrivateKey) card.getKey(alias, null);
        X509Certificate certificate = (X509Certificate) card.getCertificate(alias);
        // toString() spells the serialNumber (the 12-digit user ID) out;
        // getName() would give it as hex.
        System.out.println("subject: " + certificate.getSubjectX500Principal());

        String algorithm = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] data = "vscard from Java".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Signature signer = Signature.getInstance(algorithm, provider);
        signer.initSign(key);
        signer.update(data);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance(algorithm);
        verifier.initVerify(certificate.getPublicKey());
        verifier.update(data);
        if (!verifier.verify(signature)) {
            throw new IllegalStateException("the signature does not verify");
        }
        System.out.println("signature verified (" + algorithm + ")");

        // The chain: card certificate, Sub CA, Root CA from the truststore.
        KeyStore trust = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            trust.load(in, args[1].toCharArray());
        }
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        X509Certificate sub;
        try (FileInputStream in = new FileInputStream(args[2])) {
            sub = (X509Certificate) factory.generateCertificate(in);
        }
        PKIXParameters parameters = new PKIXParameters(trust);
        parameters.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX")
                .validate(factory.generateCertPath(List.of(certificate, sub)), parameters);
        System.out.println("certificate chains to the trusted Root CA");
    }
}
