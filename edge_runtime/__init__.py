"""What runs on the gateway: bundles, scoring, serial input, alarms and MQTT.

Never imports TensorFlow or the trainer; heavy optional imports (LiteRT,
paho-mqtt, pyserial) happen inside the functions that need them.
"""

__version__ = "0.1.0"
