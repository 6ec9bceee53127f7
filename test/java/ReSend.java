import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileInputStream;
import java.io.BufferedInputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Re-sends messages the SDK encoded with Kafka's Java client and one compression.type, so the
 * worker is tested on record batches as Java producers write them (xerial snappy, KafkaLZ4
 * frames, zstd-jni streams). Input: a file of records, each a 4-byte big-endian key length, the
 * key, a 4-byte value length, the value.
 * Usage: ReSend BOOTSTRAP TOPIC COMPRESSION FILE. Prints the number of acknowledged records.
 */
public class ReSend {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args[2]);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    List<Future<RecordMetadata>> acks = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
         DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(args[3])))) {
      while (true) {
        byte[] key;
        try {
          key = new byte[in.readInt()];
        } catch (EOFException end) {
          break;
        }
        in.readFully(key);
        byte[] value = new byte[in.readInt()];
        in.readFully(value);
        acks.add(producer.send(new ProducerRecord<>(args[1], key, value)));
      }
      producer.flush();
      for (Future<RecordMetadata> ack : acks) ack.get();
    }
    System.out.println(acks.size());
  }
}
