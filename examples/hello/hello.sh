#!/bin/busybox sh
echo "$GREETING"
/bin/busybox cat /app/greeting.txt
