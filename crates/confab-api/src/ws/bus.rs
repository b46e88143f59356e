//! The in-process bus: one tokio broadcast channel. A receiver that falls more than the
//! channel's capacity behind is told how many messages it lost.

use async_trait::async_trait;
use confab_core::bus::{Bus, BusError, BusMessage, BusReceiver};
use tokio::sync::broadcast;

pub struct LocalBus {
    tx: broadcast::Sender<BusMessage>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl Bus for LocalBus {
    fn publish(&self, msg: BusMessage) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(msg);
    }

    fn subscribe(&self) -> Box<dyn BusReceiver> {
        Box::new(LocalReceiver(self.tx.subscribe()))
    }
}

struct LocalReceiver(broadcast::Receiver<BusMessage>);

#[async_trait]
impl BusReceiver for LocalReceiver {
    async fn recv(&mut self) -> Result<BusMessage, BusError> {
        match self.0.recv().await {
            Ok(m) => Ok(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(BusError::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(BusError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::ids::{AppId, RoomNumber, UserId};

    fn typing(n: i64) -> BusMessage {
        BusMessage::Typing {
            app: AppId(1),
            room: RoomNumber(n),
            user: UserId("u".into()),
        }
    }

    #[tokio::test]
    async fn a_receiver_gets_everything_in_order_or_is_told_it_lagged() {
        let bus = LocalBus::new(16);
        let mut rx = bus.subscribe();
        for n in 0..3 {
            bus.publish(typing(n));
        }
        for n in 0..3 {
            assert_eq!(rx.recv().await, Ok(typing(n)));
        }
        for n in 0..40 {
            bus.publish(typing(n));
        }
        assert!(matches!(rx.recv().await, Err(BusError::Lagged(_))));
        drop(bus);
    }
}
