#!/usr/bin/env bash
# Certificates and users for the secured local broker (scripts/kafka.sh start-secure), made with
# the JDK's keytool (and openssl only to export private keys as PEM for Node clients).
#   scripts/kafka-secure.sh certs DIR   create, once, in DIR:
#     ca.p12 / ca.pem            the test CA (PKCS12 keystore and its PEM certificate)
#     broker.p12, truststore.p12 the broker's keystore (CN=broker, SAN 127.0.0.1, localhost) and truststore (the CA)
#     <user>.pem, <user>-key.pem client certificates signed by the CA, CN=<user>, for mTLS
#                                (admin, producer, worker); the keys are encrypted with $KEY_PASSWORD
#     rogue-ca.pem, rogue.pem, rogue-key.pem   a second CA the broker does not trust, and a client certificate it signed
#     users.env                  random passwords (mode 600): STORE_PASSWORD, KEY_PASSWORD and
#                                ADMIN_PASSWORD, PRODUCER_PASSWORD, WORKER_PASSWORD (SCRAM and PLAIN)
# Principals: a certificate's CN and a SASL user name map to the same principal (User:producer),
# so the ACLs of scripts/kafka.sh hold for every mechanism.
set -euo pipefail
USERS=(admin producer worker)

certs() {
  local dir="$1"
  if [ -f "$dir/.complete" ]; then return 0; fi
  command -v keytool >/dev/null || { echo "kafka-secure.sh: the JDK's keytool is required" >&2; exit 1; }
  rm -rf "$dir"; mkdir -p "$dir"; chmod 700 "$dir"
  local pw; pw() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
  local sp kp; sp="$(pw)"; kp="$(pw)"
  {
    echo "STORE_PASSWORD=$sp"; echo "KEY_PASSWORD=$kp"
    for u in "${USERS[@]}"; do echo "$(echo "$u" | tr a-z A-Z)_PASSWORD=$(pw)"; done
  } >"$dir/users.env"
  chmod 600 "$dir/users.env"
  # About 30 keytool runs: a JVM each, so start them lean (C1 only, serial GC): about half the time on a busy machine.
  local kt=(keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -J-Xss512k -storetype PKCS12 -storepass "$sp" -keypass "$sp")
  exec 3>&2 2>>"$dir/keytool.log"
  local days=3650
  # A CA (basic constraints CA:true) ...
  "${kt[@]}" -genkeypair -keystore "$dir/ca.p12" -alias ca -dname "CN=ingest-test-ca" -keyalg RSA -keysize 2048 -validity "$days" -ext bc:c -noprompt
  "${kt[@]}" -exportcert -keystore "$dir/ca.p12" -alias ca -rfc -file "$dir/ca.pem"
  "${kt[@]}" -genkeypair -keystore "$dir/rogue-ca.p12" -alias ca -dname "CN=rogue-ca" -keyalg RSA -keysize 2048 -validity "$days" -ext bc:c -noprompt
  "${kt[@]}" -exportcert -keystore "$dir/rogue-ca.p12" -alias ca -rfc -file "$dir/rogue-ca.pem"
  # ... signs the broker's certificate (server and client use: the broker is its own controller's client) ...
  signed() { # name CN ca-keystore ca-pem SAN-ext...
    local name="$1" cn="$2" cas="$3" capem="$4"; shift 4
    "${kt[@]}" -genkeypair -keystore "$dir/$name.p12" -alias "$name" -dname "CN=$cn" -keyalg RSA -keysize 2048 -validity "$days" -noprompt
    "${kt[@]}" -certreq -keystore "$dir/$name.p12" -alias "$name" -file "$dir/$name.csr"
    "${kt[@]}" -gencert -keystore "$cas" -alias ca -infile "$dir/$name.csr" -outfile "$dir/$name.pem" -rfc -validity "$days" \
      -ext KU=digitalSignature,keyEncipherment -ext EKU=serverAuth,clientAuth "$@"
    "${kt[@]}" -importcert -keystore "$dir/$name.p12" -alias ca -file "$capem" -noprompt >&2
    "${kt[@]}" -importcert -keystore "$dir/$name.p12" -alias "$name" -file "$dir/$name.pem" -noprompt >&2
    rm -f "$dir/$name.csr"
  }
  signed broker broker "$dir/ca.p12" "$dir/ca.pem" -ext SAN=IP:127.0.0.1,DNS:localhost
  "${kt[@]}" -importcert -keystore "$dir/truststore.p12" -alias ca -file "$dir/ca.pem" -noprompt >&2
  # ... and the client certificates; Node reads PEM, so each key is exported (encrypted) with openssl.
  for u in "${USERS[@]}" rogue; do
    if [ "$u" = rogue ]; then signed "$u" "$u" "$dir/rogue-ca.p12" "$dir/rogue-ca.pem"; else signed "$u" "$u" "$dir/ca.p12" "$dir/ca.pem"; fi
    openssl pkcs12 -in "$dir/$u.p12" -nocerts -passin "pass:$sp" -passout "pass:$kp" -out "$dir/$u-key.pem" 2>/dev/null
    chmod 600 "$dir/$u-key.pem"
  done
  exec 2>&3 3>&-
  touch "$dir/.complete"
  echo "kafka-secure.sh: certificates and users in $dir"
}

case "${1:-}" in
  certs) [ -n "${2:-}" ] || { echo "usage: scripts/kafka-secure.sh certs DIR" >&2; exit 2; }; certs "$2" ;;
  *) echo "usage: scripts/kafka-secure.sh certs DIR" >&2; exit 2 ;;
esac
