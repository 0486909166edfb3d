// javax.smartcardio against a vscard card: select PIV, show the PIN tries
// left, verify the PIN. Run (Java 11+ runs a single source file directly):
//
//   VSCARD_PIN=123456 java \
//     -Dsun.security.smartcardio.library=/usr/lib/x86_64-linux-gnu/libpcsclite.so.1 \
//     PivSmartcardIo.java
//
// The PIN comes from the environment, never the command line.
import java.util.List;
import javax.smartcardio.Card;
import javax.smartcardio.CardChannel;
import javax.smartcardio.CardTerminal;
import javax.smartcardio.CardTerminals;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import javax.smartcardio.TerminalFactory;

public class PivSmartcardIo {
    private static final byte[] PIV_AID = {
        (byte) 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00
    };

    public static void main(String[] args) throws Exception {
        String pin = System.getenv("VSCARD_PIN");
        if (pin == null || pin.length() < 6 || pin.length() > 8) {
            throw new IllegalArgumentException("set VSCARD_PIN to the card's 6 to 8 digit PIN");
        }
        List<CardTerminal> present =
                TerminalFactory.getDefault().terminals().list(CardTerminals.State.CARD_PRESENT);
        if (present.isEmpty()) {
            throw new IllegalStateException("no reader with a card");
        }
        CardTerminal terminal = present.get(0);
        System.out.println("reader: " + terminal.getName());
        Card card = terminal.connect("*");
        try {
            CardChannel channel = card.getBasicChannel();
            check(channel.transmit(new CommandAPDU(0x00, 0xA4, 0x04, 0x00, PIV_AID, 256)), "SELECT PIV");
            // VERIFY without data: 63Cx says x tries are left.
            ResponseAPDU status = channel.transmit(new CommandAPDU(new byte[] {0x00, 0x20, 0x00, (byte) 0x80}));
            System.out.printf("PIN tries left: %d%n", status.getSW() & 0x0F);
            byte[] padded = new byte[8];
            java.util.Arrays.fill(padded, (byte) 0xFF);
            byte[] digits = pin.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            System.arraycopy(digits, 0, padded, 0, digits.length);
            check(channel.transmit(new CommandAPDU(0x00, 0x20, 0x00, 0x80, padded)), "VERIFY PIN");
            java.util.Arrays.fill(padded, (byte) 0);
            System.out.println("PIN verified");
        } finally {
            card.disconnect(false);
        }
    }

    private static void check(ResponseAPDU response, String what) {
        if (response.getSW() != 0x9000) {
            throw new IllegalStateException(String.format("%s: status %04X", what, response.getSW()));
        }
    }
}
