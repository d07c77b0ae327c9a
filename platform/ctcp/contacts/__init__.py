"""The directory of national contact points: the authorities States designate for
international cooperation, kept by the States themselves and by CTED."""
