"""Numbers of the standard and vendor attributes ztsim reads or writes."""

from enum import IntEnum


class AttributeType(IntEnum):
    """Standard RADIUS attribute types (IANA "RADIUS Attribute Types" registry)."""

    USER_NAME = 1  # RFC 2865 §5.1
    USER_PASSWORD = 2  # RFC 2865 §5.2
    CHAP_PASSWORD = 3  # RFC 2865 §5.3
    NAS_IP_ADDRESS = 4  # RFC 2865 §5.4
    NAS_PORT = 5  # RFC 2865 §5.5
    SERVICE_TYPE = 6  # RFC 2865 §5.6
    FRAMED_PROTOCOL = 7  # RFC 2865 §5.7
    FRAMED_IP_ADDRESS = 8  # RFC 2865 §5.8
    FRAMED_IP_NETMASK = 9  # RFC 2865 §5.9
    FILTER_ID = 11  # RFC 2865 §5.11
    FRAMED_MTU = 12  # RFC 2865 §5.12
    REPLY_MESSAGE = 18  # RFC 2865 §5.18
    STATE = 24  # RFC 2865 §5.24
    CLASS = 25  # RFC 2865 §5.25
    VENDOR_SPECIFIC = 26  # RFC 2865 §5.26
    SESSION_TIMEOUT = 27  # RFC 2865 §5.27
    IDLE_TIMEOUT = 28  # RFC 2865 §5.28
    CALLED_STATION_ID = 30  # RFC 2865 §5.30; 3GPP TS 29.061 §16.4.7: the APN
    CALLING_STATION_ID = 31  # RFC 2865 §5.31; 3GPP TS 29.061 §16.4.7: the MSISDN
    NAS_IDENTIFIER = 32  # RFC 2865 §5.32
    PROXY_STATE = 33  # RFC 2865 §5.33
    ACCT_STATUS_TYPE = 40  # RFC 2866 §5.1
    ACCT_DELAY_TIME = 41  # RFC 2866 §5.2
    ACCT_INPUT_OCTETS = 42  # RFC 2866 §5.3
    ACCT_OUTPUT_OCTETS = 43  # RFC 2866 §5.4
    ACCT_SESSION_ID = 44  # RFC 2866 §5.5
    ACCT_AUTHENTIC = 45  # RFC 2866 §5.6
    ACCT_SESSION_TIME = 46  # RFC 2866 §5.7
    ACCT_INPUT_PACKETS = 47  # RFC 2866 §5.8
    ACCT_OUTPUT_PACKETS = 48  # RFC 2866 §5.9
    ACCT_TERMINATE_CAUSE = 49  # RFC 2866 §5.10
    ACCT_MULTI_SESSION_ID = 50  # RFC 2866 §5.11
    ACCT_INPUT_GIGAWORDS = 52  # RFC 2869 §5.1
    ACCT_OUTPUT_GIGAWORDS = 53  # RFC 2869 §5.2
    EVENT_TIMESTAMP = 55  # RFC 2869 §5.3
    NAS_PORT_TYPE = 61  # RFC 2865 §5.41
    ACCT_INTERIM_INTERVAL = 85  # RFC 2869 §5.16
    MESSAGE_AUTHENTICATOR = 80  # RFC 3579 §3.2
    NAS_PORT_ID = 87  # RFC 2869 §5.17
    NAS_IPV6_ADDRESS = 95  # RFC 3162 §2.1
    FRAMED_INTERFACE_ID = 96  # RFC 3162 §2.2
    FRAMED_IPV6_PREFIX = 97  # RFC 3162 §2.3
    ERROR_CAUSE = 101  # RFC 5176 §3.5
    FRAMED_IPV6_ADDRESS = 168  # RFC 6911 §3.1
    DNS_SERVER_IPV6_ADDRESS = 169  # RFC 6911 §3.2


# IANA "Private Enterprise Numbers": 3GPP, for TS 29.061 §16.4.7 sub-attributes.
VENDOR_3GPP = 10415
# IANA "Private Enterprise Numbers": Microsoft, for RFC 2548 attributes.
VENDOR_MICROSOFT = 311


class ThreeGppType(IntEnum):
    """3GPP vendor-specific sub-attribute types (TS 29.061 Table 16.4.7.1)."""

    IMSI = 1
    CHARGING_ID = 2
    PDP_TYPE = 3
    CG_ADDRESS = 4
    GPRS_NEGOTIATED_QOS_PROFILE = 5
    SGSN_ADDRESS = 6
    GGSN_ADDRESS = 7
    IMSI_MCC_MNC = 8
    GGSN_MCC_MNC = 9
    NSAPI = 10
    SESSION_STOP_INDICATOR = 11
    SELECTION_MODE = 12
    CHARGING_CHARACTERISTICS = 13
    CG_IPV6_ADDRESS = 14
    SGSN_IPV6_ADDRESS = 15
    GGSN_IPV6_ADDRESS = 16
    IPV6_DNS_SERVERS = 17
    SGSN_MCC_MNC = 18
    TEARDOWN_INDICATOR = 19
    IMEISV = 20
    RAT_TYPE = 21
    USER_LOCATION_INFO = 22
    MS_TIMEZONE = 23
    CAMEL_CHARGING_INFO = 24
    PACKET_FILTER = 25
    NEGOTIATED_DSCP = 26
    ALLOCATE_IP_TYPE = 27


class MicrosoftType(IntEnum):
    """Microsoft vendor-specific sub-attribute types used by packet gateways."""

    # MS-Primary/Secondary-DNS-Server (FreeRADIUS dictionary.microsoft, which credits
    # RFC 2548 for the vendor's attributes). Many
    # GGSN/PGW products read them to hand IPv4 DNS servers to the UE, since
    # neither RFC 2865 nor TS 29.061 defines an IPv4 DNS attribute.
    PRIMARY_DNS_SERVER = 28
    SECONDARY_DNS_SERVER = 29
